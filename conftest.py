"""Root pytest configuration: the contract suite's plugin and the servers the backends need."""

pytest_plugins = ["kvstore.testing.plugin"]
