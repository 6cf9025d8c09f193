"""Would static embeddings help recall? Daily-entry ranking: FTS vs vectors vs both (RRF).

    pip install wordllama && python scripts/eval_semantic.py [--split dev|held-out]

Builds the recall benchmark's memory (``bench_recall.build_world``: offline, extractive), embeds
every daily entry with WordLlama (its 256-dimension model ships inside the wheel; it is loaded
from the package folder with downloads disabled, so nothing is fetched), and ranks the entries
for each prompt three ways: ``recall.rank`` (FTS5 bm25 + project factor, what the hooks use),
cosine similarity of the vectors, and reciprocal rank fusion of the two (k = 60). Prints
recall@1 / @5 of the answering session per prompt kind. WordLlama is not a dependency of
memory-compiler: this script is how the decision not to add it was measured.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RRF_K = 60


def _rank_of(order: list[str], answers: tuple[str, ...]) -> int | None:
    return next((i + 1 for i, sid in enumerate(order) if sid in answers), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("dev", "held-out"), default="dev")
    args = parser.parse_args(argv)
    try:
        import numpy as np
        import wordllama
        from wordllama import WordLlama
    except ImportError:
        print("needs wordllama (pip install wordllama); it is not a project dependency")
        return 2
    import bench_recall as bench

    from pipeline import recall, search
    from pipeline.daily import list_days, read_entries
    from pipeline.project import identify

    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    tmp = Path(tempfile.mkdtemp(prefix="memc-semantic-"))
    try:
        world = bench.build_world(tmp)
        paths = world.settings.paths
        docs = [
            (f"daily/{day}", f"{e.title}\n{e.body}")
            for day in list_days(paths.daily)
            for e in read_entries(paths.daily, day)
        ]
        vectors = model.embed([text for _, text in docs], norm=True)
        index = search.open_index(paths)
        assert index is not None
        rows: dict[str, list[tuple[int | None, int | None, int | None]]] = {}
        with index:
            for p in bench.load_prompts():
                if p.kind == "unrelated" or p.split != args.split:
                    continue
                query = model.embed([p.text], norm=True)[0]
                by_vector = [world.day_session[docs[i][0]] for i in np.argsort(-(vectors @ query))]
                key = identify(str(world.folders[p.project])).key
                found = recall.rank(index.conn, p.text, project_key=key, limit=30, kind="daily")
                by_fts = [world.day_session[m.link] for m in found if m.link in world.day_session]
                fused: dict[str, float] = {}
                for order in (by_vector, by_fts):
                    for i, sid in enumerate(order):
                        fused[sid] = fused.get(sid, 0.0) + 1 / (RRF_K + i + 1)
                by_rrf = sorted(fused, key=lambda s: -fused[s])
                rows.setdefault(p.kind, []).append(
                    tuple(_rank_of(o, p.answers) for o in (by_fts, by_vector, by_rrf))  # type: ignore[arg-type]
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"split {args.split}: recall@1 / recall@5 of the answering session among daily entries")
    print(f"  {'kind':<12}{'n':>3}  {'fts':>11}  {'vectors':>11}  {'rrf':>11}")
    for kind, ranks in rows.items():
        cells = []
        for col in range(3):
            at1 = sum(1 for r in ranks if r[col] is not None and r[col] <= 1) / len(ranks)
            at5 = sum(1 for r in ranks if r[col] is not None and r[col] <= 5) / len(ranks)
            cells.append(f"{at1:.2f} / {at5:.2f}")
        print(f"  {kind:<12}{len(ranks):>3}  {cells[0]:>11}  {cells[1]:>11}  {cells[2]:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
