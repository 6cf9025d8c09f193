"""memory-compiler: Claude Code sessions -> daily logs -> a wikilinked markdown knowledge base.

The package must stay cheap to import: the hook entry point (`pipeline.entry` -> `pipeline.hooks`)
imports only the standard library, so nothing heavy may be imported here.
"""

__version__ = "0.1.0"
