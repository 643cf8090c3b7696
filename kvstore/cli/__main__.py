"""``python -m kvstore.cli``: the ``kvstore`` console script."""

from __future__ import annotations

from kvstore.cli import main

main()
