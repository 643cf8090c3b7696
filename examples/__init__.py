"""Example apps built on kvstore, with their tests."""
