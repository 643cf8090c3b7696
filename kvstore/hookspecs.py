"""The hooks a kvstore plugin implements (pluggy project name ``kvstore``)."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from kvstore.backend import Backend

__all__ = ["hookimpl", "hookspec", "kvstore_register_backends"]

hookspec = pluggy.HookspecMarker("kvstore")
hookimpl = pluggy.HookimplMarker("kvstore")


@hookspec
def kvstore_register_backends(register: Callable[[Backend], None]) -> None:
    """Register the backends this plugin provides.

    :param register: call it once per backend, with an object following ``kvstore.backend.Backend``.
        Registering must stay cheap: import the driver in ``Backend.open``, not here.
    """
