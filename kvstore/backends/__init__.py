"""The built-in backends, each a plugin package of the same shape as a third-party one."""
