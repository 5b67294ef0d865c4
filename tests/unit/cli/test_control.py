"""The mount's control socket answers a command that failed with the failure's
own one-line message and exit status, also when a nursery wrapped it in an
exception group, and only an unknown error as an internal one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio

from dwfs.cli import _mounts
from dwfs.errors import ExitCode, TierUnavailable


async def ask(tmp_path: Path, failure: Exception) -> _mounts.RemoteError:
    async def handler(body: dict[str, Any]) -> Any:
        raise failure

    sock = tmp_path / "control.sock"
    info = {"socket": str(sock), "mountpoint": str(tmp_path)}
    async with trio.open_nursery() as nursery:
        await nursery.start(_mounts.serve_control, sock, handler)
        with pytest.raises(_mounts.RemoteError) as caught:
            await trio.to_thread.run_sync(_mounts.request, info, {"command": "sync"})
        nursery.cancel_scope.cancel()
    return caught.value


async def test_a_failure_inside_an_exception_group_is_answered_as_itself(tmp_path: Path) -> None:
    unavailable = TierUnavailable("s3://b did not answer within 2 s")
    answer = await ask(tmp_path, ExceptionGroup("from a nursery", [unavailable]))
    assert str(answer) == "s3://b did not answer within 2 s"
    assert answer.exit_code == unavailable.exit_code


async def test_an_unknown_failure_is_an_internal_error(tmp_path: Path) -> None:
    answer = await ask(tmp_path, KeyError("x"))
    assert str(answer).startswith("internal error")
    assert answer.exit_code == ExitCode.FAILURE
