"""A Lambda-like code directory for the cold-start runs: kvstore[aurora,dynamo-native] and its
dependencies (boto3 for the raw side's ``boto3.client``, as the Lambda runtime ships it).

An AWS Lambda function's code is a directory (``/var/task``) holding the function's packages, on
the path of an interpreter whose standard library is compiled. The directory is read-only, so a
package shipped without ``.pyc`` files is compiled from source at every cold start. This module
lays out such a directory twice: without bytecode, and compiled by ``python -m compileall`` as the
build step in docs/PERFORMANCE.md does. The cold-start children run with ``-S`` (no site-packages)
and ``PYTHONPATH`` set to one of them, so every package but the standard library comes from it.
"""

from __future__ import annotations

import compileall
import os
import py_compile
import shutil
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

__all__ = ["CodeDirs", "make_code_dirs"]

ROOT = Path(__file__).resolve().parent.parent
KVSTORE_PACKAGES = ("kvstore", "kvstore_aurora", "kvstore_dynamo")
EXTRAS = ("aurora", "dynamo-native")


class CodeDirs:
    """The two code directories: ``source`` (no bytecode) and ``compiled``."""

    def __init__(self, source: Path, compiled: Path, distributions: list[str]) -> None:
        self.source = source
        self.compiled = compiled
        self.distributions = distributions


def _closure(name: str, extras: tuple[str, ...]) -> Iterator[tuple[str, metadata.Distribution]]:
    """``name`` and every distribution it requires with ``extras``, recursively (installed ones)."""
    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo: list[tuple[str, tuple[str, ...]]] = [(name, extras)]
    while todo:
        current, wanted = todo.pop()
        key = current.lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(current)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency this machine does not have
        yield key, dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if marker is None or any(marker.evaluate(env) for env in environments):
                todo.append((requirement.name, tuple(requirement.extras)))


def _ignored(relative: str) -> bool:
    return relative.startswith("..") or "__pycache__" in relative or relative.endswith(".pyc")


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # the same bytes; a hard link spares copying botocore's data
    except OSError:
        shutil.copy2(source, target)


def _kvstore(into: Path) -> None:
    """kvstore's own packages from this checkout, and a dist-info with its entry points."""
    for package in KVSTORE_PACKAGES:
        for path in (ROOT / package).rglob("*"):
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and not _ignored(relative):
                _place(path, into / relative)
    dist = metadata.distribution("kvstore")
    info = into / f"kvstore-{dist.version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: kvstore\nVersion: {dist.version}\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(dist.read_text("entry_points.txt") or "", "utf-8")


def make_code_dirs(base: Path) -> CodeDirs:
    """Lay out ``base/source`` (no bytecode) and ``base/compiled`` (the same, compiled)."""
    if base.exists():
        shutil.rmtree(base)
    source, compiled = base / "source", base / "compiled"
    source.mkdir(parents=True)
    names = []
    for key, dist in _closure("kvstore", EXTRAS):
        names.append(f"{key} {dist.version}")
        if key == "kvstore":
            _kvstore(source)
            continue
        for file in dist.files or []:
            relative = file.as_posix()
            if not _ignored(relative):
                _place(Path(str(dist.locate_file(file))), source / relative)
    shutil.copytree(source, compiled, copy_function=_link)
    compileall.compile_dir(
        compiled,
        quiet=1,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    return CodeDirs(source, compiled, sorted(names))


def _link(source: str, target: str) -> None:
    _place(Path(source), Path(target))
