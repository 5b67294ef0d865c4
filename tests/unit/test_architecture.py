"""Rules the import-linter contract cannot see."""

from __future__ import annotations

import re
from pathlib import Path

import dwfs

ROOT = Path(dwfs.__file__).parent


def test_only_accel_imports_the_native_extension() -> None:
    for path in ROOT.rglob("*.py"):
        if path.parent.name == "_accel":
            continue
        assert not re.search(r"\b_native\b", path.read_text()), path


def test_public_api() -> None:
    assert sorted(dwfs.__all__) == [
        "Credential",
        "Pool",
        "PoolOptions",
        "create_pool",
        "errors",
        "open_pool",
    ]


def test_every_error_has_an_errno_and_exit_code() -> None:
    from dwfs import errors

    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, errors.DwfsError):
            assert value.errno > 0
            assert value.exit_code in errors.ExitCode
