"""CLI commands of the read stage: `memc search`, `memc query` and `memc lint`.

Thin: parse options, call ``pipeline.search`` / ``pipeline.query.run_query`` /
``pipeline.lint.run_lint``, print. Domain modules are imported inside the command bodies to keep
`memc` start-up fast (`memc search` never pays for the Agent SDK or PyYAML).
"""

from __future__ import annotations

import click

from pipeline.cli import App, emit_json, pass_app, warn

COMMANDS: list[click.Command] = []
SHOW_PER_CHECK = 20
SHOW_INFO = 5


@click.command("search")
@click.argument("query", nargs=-1, required=True)
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(1, 200),
    default=10,
    show_default=True,
    help="Most hits to show.",
)
@click.option(
    "--kind",
    type=click.Choice(["article", "daily"]),
    default=None,
    help="Only articles or only daily entries.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the hits as one JSON document.")
@pass_app
def search_cmd(
    app: App, query: tuple[str, ...], limit: int, kind: str | None, as_json: bool
) -> int:
    """Full-text search over knowledge/ and daily/ (local, no model)."""
    from pipeline.searchcmd import report

    # The console script runs the plain forms without click (pipeline.entry); both print this.
    text = report(app.settings().paths, " ".join(query), limit=limit, kind=kind, as_json=as_json)
    click.echo(text)
    return 0


COMMANDS.append(search_cmd)


@click.command("lint")
@click.option("--structural-only", is_flag=True, help="Skip the model's contradiction check.")
@click.option(
    "--fix", is_flag=True, help="Repair what is unambiguous (index, backlinks, link forms)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def lint_cmd(app: App, structural_only: bool, fix: bool, as_json: bool) -> int:
    """Health checks of the knowledge base; exit 1 when there are errors.

    Broken links, orphans, missing backlinks, sparse pages, frontmatter, index drift, daily
    entries never compiled or edited since, and (without --structural-only) contradictions
    between closely related pages, asked of the model in small clusters.
    """
    from pipeline.lint import run_lint

    report = run_lint(app.settings(), structural_only=structural_only, fix=fix)
    if as_json:
        emit_json(report.to_dict())
        return 1 if report.errors else 0
    for line in report.fixed:
        click.echo(f"fixed: {line}")
    current, shown = None, 0
    counts = report.by_check()
    for issue in report.issues:
        if issue.check != current:
            if current is not None and counts[current] > shown:
                click.echo(f"  ... and {counts[current] - shown} more (see the report)")
            current, shown = issue.check, 0
            click.echo(f"{issue.check} ({counts[current]}):")
        if shown < (SHOW_PER_CHECK if issue.severity != "info" else SHOW_INFO):
            click.echo(f"  {issue.severity:7} {issue.file}: {issue.detail}")
            shown += 1
    if current is not None and counts[current] > shown:
        click.echo(f"  ... and {counts[current] - shown} more (see the report)")
    for note in report.notes:
        warn(f"note: {note}")
    click.echo(
        f"{report.articles} articles, {report.links} links: {report.errors} errors, "
        f"{report.count('warning')} warnings, {report.count('info')} info "
        f"({report.duration_s:.2f} s). Report: {report.report_path}"
    )
    if not fix and any(
        i.check in ("index_drift", "missing_backlink", "noncanonical_link") for i in report.issues
    ):
        click.echo("Run `memc lint --fix` to repair index drift, missing backlinks and link forms.")
    return 1 if report.errors else 0


COMMANDS.append(lint_cmd)


@click.command("query")
@click.argument("question", nargs=-1, required=True)
@click.option(
    "--file-back", is_flag=True, help="Save the answer as a qa/ article (index and log.md follow)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def query_cmd(app: App, question: tuple[str, ...], file_back: bool, as_json: bool) -> int:
    """Answer QUESTION from the knowledge base, citing [[pages]] that exist.

    Only a bounded set of search hits is sent to the query model (MEMC_QUERY_MODEL); with
    MEMC_BACKEND=extractive the answer is the best-matching passages, quoted.
    """
    from pipeline.query import run_query

    result = run_query(app.settings(), " ".join(question), file_back=file_back)
    if as_json:
        emit_json(result.to_dict())
        return 0
    click.echo(result.answer)
    if result.sources:
        click.echo("\nSources:")
        for src in result.sources:
            click.echo(f"  [[{src.key}]] {src.title} ({src.path})")
    elif result.found:
        click.echo("\nSources: none of the cited pages exist; treat the answer with care.")
    if result.dropped:
        warn(
            f"dropped {len(result.dropped)} citation(s) that match no page: "
            + ", ".join(result.dropped[:10])
        )
    for note in result.notes:
        warn(f"note: {note}")
    if result.filed:
        click.echo(f"\nFiled as knowledge/{result.filed}.md (index.md and log.md updated).")
    elif file_back and not result.found:
        click.echo("Nothing filed: there was no answer to file.")
    return 0


COMMANDS.append(query_cmd)
