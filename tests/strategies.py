"""Hypothesis strategies that several test modules share."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def nested(
    scalars: st.SearchStrategy[Any], *, max_leaves: int = 10, key_size: int = 4
) -> st.SearchStrategy[Any]:
    """Values built from ``scalars``: lists and maps of them (non-empty keys of at most
    ``key_size`` characters), a few levels deep."""
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(st.text(min_size=1, max_size=key_size), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )
