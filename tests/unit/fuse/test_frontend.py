"""Which front end a mount uses: -o frontend=NAME, else DWFS_FRONTEND, else the
native one where it was built."""

from __future__ import annotations

import pytest

from dwfs.errors import UsageError
from dwfs.fuse import frontend_of, option_value
from dwfs.fuse.native import available


def test_the_option_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DWFS_FRONTEND", "native")
    assert frontend_of({"frontend=pyfuse3"}) == "pyfuse3"


def test_the_environment_sets_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DWFS_FRONTEND", "pyfuse3")
    assert frontend_of(set()) == "pyfuse3"


def test_native_is_the_default_where_it_was_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DWFS_FRONTEND", raising=False)
    assert available(), "make setup builds the native front end (libfuse3-dev is installed)"
    assert frontend_of(set()) == "native"


def test_an_unknown_front_end_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DWFS_FRONTEND", raising=False)
    with pytest.raises(UsageError, match="frontend=kernel is not one of native, pyfuse3"):
        frontend_of({"frontend=kernel"})


def test_a_valued_option_given_twice_with_two_values_is_refused() -> None:
    with pytest.raises(UsageError, match="given 2 values: give it once"):
        frontend_of({"frontend=native", "frontend=pyfuse3"})
    assert option_value({"remote_timeout=5", "ro"}, "remote_timeout=") == "5"
    assert option_value({"ro"}, "remote_timeout=") is None
