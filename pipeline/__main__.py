"""`python -m pipeline` is the same as the `memc` console script."""

from pipeline.entry import main

raise SystemExit(main())
