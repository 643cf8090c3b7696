"""Finds the installed backends: pluggy plugins of the ``kvstore`` entry-point group, loaded once.

Nothing here runs at ``import kvstore``: the plugin manager (and pluggy itself) is created the first
time a store is made, so a Lambda cold start pays only for the backend it uses.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from kvstore.errors import ConfigError

if TYPE_CHECKING:
    import pluggy

    from kvstore.backend import Backend

__all__ = ["backends", "get_backend", "plugin_manager", "reset"]

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None
_backends: dict[str, Backend] | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, with every ``kvstore`` entry point loaded."""
    global _manager
    with _lock:
        if _manager is None:
            import pluggy

            from kvstore import hookspecs

            manager = pluggy.PluginManager("kvstore")
            manager.add_hookspecs(hookspecs)
            manager.load_setuptools_entrypoints("kvstore")
            manager.check_pending()
            _manager = manager
        return _manager


def backends() -> dict[str, Backend]:
    """Every registered backend by name (collected once; ``reset`` after registering a plugin)."""
    global _backends
    manager = plugin_manager()
    with _lock:
        if _backends is None:
            found: dict[str, Backend] = {}

            def register(backend: Backend) -> None:
                found[backend.name] = backend

            manager.hook.kvstore_register_backends(register=register)
            _backends = found
        return _backends


def reset() -> None:
    """Forget the collected backends, so plugins registered since are seen by the next lookup."""
    global _backends
    with _lock:
        _backends = None


def get_backend(name: str | None) -> Backend:
    """The backend called ``name``; ``ConfigError`` listing the installed ones when there is none."""
    found = backends()
    if name and name in found:
        return found[name]
    installed = ", ".join(sorted(found)) or "none"
    if not name:
        raise ConfigError(
            "no backend chosen: set STORE_BACKEND or pass backend= "
            f"(installed backends: {installed})"
        )
    raise ConfigError(f"unknown backend {name!r} (installed backends: {installed})")
