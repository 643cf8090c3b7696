"""The ``Store`` API every store follows, typed by its records: ``Store[User]`` for a kind whose
records are the ``TypedDict`` ``User`` (``create_store(..., record_type=User)``), else
``Store[dict[str, Any]]``. ``kvstore.store.RecordStore`` implements it over any backend."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from typing_extensions import TypeVar

    from kvstore.pages import Page

    R = TypeVar("R", bound=Mapping[str, Any], default=dict[str, Any])
else:
    from typing import TypeVar

    R = TypeVar("R", bound=Mapping[str, Any])  # its default is for type checkers only

__all__ = ["R", "Store"]


@runtime_checkable
class Store(Protocol[R]):
    """A kind's records on one backend: what ``create_store`` returns (see CONTRACT.md)."""

    @property
    def kind(self) -> str:
        """The kind (table) name."""
        ...

    @property
    def id_fields(self) -> tuple[str, ...]:
        """The key fields: partition key, then the optional sort key."""
        ...

    def ensure(self) -> None:
        """Create the kind's table and indexes in the default layout when missing."""
        ...

    def find(self, filters: Mapping[str, Any]) -> R:
        """The one record matching ``filters``; ``NotFound`` or ``MultipleFound`` otherwise."""
        ...

    def find_all(self, filters: Mapping[str, Any] = ...) -> list[R]:
        """Every record matching ``filters``, sorted by key."""
        ...

    def find_in(self, field: str, values: Iterable[Any]) -> list[R]:
        """Records whose ``field`` equals one of ``values``, each once, sorted by key."""
        ...

    def find_page(
        self,
        filters: Mapping[str, Any],
        *,
        limit: int,
        cursor: str | None = None,
        descending: bool = False,
    ) -> Page:
        """A page of the records matching ``filters``, in the serving key's order."""
        ...

    def count(self, filters: Mapping[str, Any] = ...) -> int:
        """The number of records matching ``filters``."""
        ...

    def explain(self, filters: Mapping[str, Any]) -> str:
        """How a read with ``filters`` is served: ``key``, ``partition``, ``index:NAME``, ``scan``."""
        ...

    def put(self, record: R, *, expect: Mapping[str, Any] | None = None) -> R:
        """Store ``record`` whole, replacing any record with its key; return what is stored."""
        ...

    def create(self, record: R) -> R:
        """Store ``record`` unless its key is taken (``AlreadyExists``)."""
        ...

    def update(self, changes: Mapping[str, Any], *, expect: Mapping[str, Any] | None = None) -> R:
        """Merge ``changes`` (``None`` removes a field) into the record with their key."""
        ...

    def find_or_create(self, filters: Mapping[str, Any], record: R) -> R:
        """The record matching ``filters``, or ``record`` once created; race-safe."""
        ...

    def remove(self, filters: Mapping[str, Any]) -> int:
        """Delete every record matching (non-empty) ``filters``; return how many."""
        ...

    def truncate(self, force: bool = False) -> int:
        """Delete every record (only with ``force=True``); return how many."""
        ...

    def purge_expired(self) -> int:
        """Delete the expired records (a kind with a ``ttl_field``); return how many."""
        ...

    def iter_all(self, filters: Mapping[str, Any] = ...) -> Generator[R, None, None]:
        """Stream the matching records page by page, in unspecified order."""
        ...

    def put_many(self, records: Iterable[R]) -> int:
        """``put`` each record, in batches; return the number of distinct keys written."""
        ...

    def remove_in(self, field: str, values: Iterable[Any]) -> int:
        """Delete records whose ``field`` equals one of ``values``; return how many."""
        ...

    def native(self) -> Any:
        """The backend's own handles (not portable)."""
        ...
