"""A copy's progress on disk, so that ``kvstore copy --resume`` continues an interrupted backfill.

The file is JSON: which copy it belongs to (the kind, the two backends' names, and a digest of
their full specifications, which may hold secrets and are not written out), how many segments the
source is read in, and for each segment the key of the last record copied, or ``done``. It is
rewritten whole (a temporary file renamed over it) after each chunk, so a copy killed at any
instant leaves the last chunk's checkpoint or the one before, never a torn file. By default it
lives in ``.kvstore/`` under the working directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from kvstore.errors import InvalidArgument
from kvstore.schema import Key

__all__ = ["DIRECTORY", "Checkpoint", "default_path"]

DIRECTORY = ".kvstore"
"""Where checkpoints live by default, under the working directory."""

_VERSION = 1


def _digest(kind: str, source: str, target: str) -> str:
    text = "\0".join((kind, source, target)).encode("utf-8")
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def _name(spec: str) -> str:
    """The backend name of a ``NAME:OPTION=VALUE,...`` specification (never its options)."""
    name = spec.partition(":")[0]
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "backend"


def default_path(kind: str, source: str, target: str) -> Path:
    """``.kvstore/copy-KIND-FROM-TO-DIGEST.json`` under the working directory."""
    digest = _digest(kind, source, target)
    return Path(DIRECTORY) / f"copy-{kind}-{_name(source)}-{_name(target)}-{digest}.json"


class Checkpoint:
    """The progress of one copy of ``kind`` from ``source`` to ``target`` (backend specs), read
    in ``segments`` segments; thread-safe (each segment's thread advances its own)."""

    def __init__(self, path: Path, kind: str, source: str, target: str, segments: int) -> None:
        self.path = path
        self.kind = kind
        self.identity = {
            "kind": kind,
            "from": _name(source),
            "to": _name(target),
            "digest": _digest(kind, source, target),
        }
        self.segments = segments
        self.after: dict[int, Key | None] = dict.fromkeys(range(segments))
        self.done: set[int] = set()
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, kind: str, source: str, target: str) -> Checkpoint | None:
        """The checkpoint at ``path`` (``None`` when there is none); ``InvalidArgument`` when it
        belongs to another copy or cannot be read."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InvalidArgument(f"cannot read the checkpoint {str(path)!r}: {exc}") from None
        try:
            data = json.loads(text)
            segments = int(data["segments"])
            checkpoint = cls(path, kind, source, target, segments)
            if data.get("version") != _VERSION or data["copy"] != checkpoint.identity:
                raise InvalidArgument(
                    f"the checkpoint {str(path)!r} belongs to another copy ({data.get('copy')}); "
                    "name another --checkpoint, or start over without --resume"
                )
            for segment, after in data["after"].items():
                checkpoint.after[int(segment)] = None if after is None else tuple(after)
            checkpoint.done = {int(segment) for segment in data["done"]}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidArgument(f"the checkpoint {str(path)!r} is damaged: {exc!r}") from None
        return checkpoint

    def advance(self, segment: int, after: Key) -> None:
        """Segment ``segment`` is copied up to the record with key ``after`` (saved at once)."""
        with self._lock:
            self.after[segment] = after
            self._save()

    def finish(self, segment: int) -> None:
        """Segment ``segment`` is copied whole (saved at once)."""
        with self._lock:
            self.done.add(segment)
            self._save()

    def remove(self) -> None:
        """Delete the file (the copy is complete), and its directory when it is the default one
        and nothing else is left in it."""
        self.path.unlink(missing_ok=True)
        if self.path.parent.name == DIRECTORY:
            with contextlib.suppress(OSError):  # not empty: other copies' checkpoints
                self.path.parent.rmdir()

    def _save(self) -> None:
        data: dict[str, Any] = {
            "version": _VERSION,
            "copy": self.identity,
            "segments": self.segments,
            "after": {str(s): None if a is None else list(a) for s, a in self.after.items()},
            "done": sorted(self.done),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(data, file, ensure_ascii=False)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.path)
