"""A Lambda deployment directory (``pip install --target``) carries a backend's driver and nothing
the code path does not import; the README's size table is this test's measurement."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

pytestmark = pytest.mark.slow

# What each extra must bring, and what it must not.
PACKAGES = {
    "": ({"kvstore", "pluggy"}, {"botocore", "boto3", "psycopg", "sqlalchemy", "alembic"}),
    "dynamo": ({"kvstore", "botocore"}, {"boto3", "psycopg", "sqlalchemy", "alembic"}),
    "aurora": ({"kvstore", "psycopg", "psycopg_binary"}, {"sqlalchemy", "alembic", "botocore"}),
}


def _install(target: Path, extra: str) -> Path:
    spec = f"{ROOT}[{extra}]" if extra else str(ROOT)
    directory = target / (extra or "base")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            str(directory),
            spec,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return directory


def _megabytes(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file()) / 1e6


def _readme_sizes() -> dict[str, float]:
    """The README's "what to deploy" table: extra -> MB."""
    section = README.read_text().split("### What a Lambda deploys", 1)[1].split("\n## ", 1)[0]
    sizes = {}
    for row in re.finditer(r"^\| `([^`]*)` \|.*?\| ([\d.]+) MB \|", section, re.M):
        sizes[row.group(1)] = float(row.group(2))
    return sizes


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    target = tmp_path_factory.mktemp("lambda")
    return {extra: _install(target, extra) for extra in PACKAGES}


@pytest.mark.parametrize("extra", sorted(PACKAGES))
def test_an_extra_deploys_its_driver_and_nothing_else(
    installed: dict[str, Path], extra: str
) -> None:
    present, absent = PACKAGES[extra]
    names = {path.name.lower() for path in installed[extra].iterdir() if path.is_dir()}
    assert present <= names, sorted(names)
    assert not absent & names, sorted(absent & names)


def test_the_readme_tells_the_measured_sizes(installed: dict[str, Path]) -> None:
    claimed = _readme_sizes()
    specs = {"kvstore": "", "kvstore[dynamo]": "dynamo", "kvstore[aurora]": "aurora"}
    assert set(claimed) == set(specs), claimed
    for spec, extra in specs.items():
        measured = _megabytes(installed[extra])
        # Within 25%: a new patch release of a driver moves it a little, not a lot.
        assert abs(claimed[spec] - measured) <= 0.25 * measured, (spec, claimed[spec], measured)
