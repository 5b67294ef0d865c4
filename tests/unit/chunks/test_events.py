"""Events from changes in a pool's status, and the hook that hears of them: a
real program, one that fails and one that hangs."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

from dwfs.chunks import _events
from dwfs.chunks._events import Events, PoolWatch


def status(states: list[str], errors: list[int], used: int = 10) -> dict[str, Any]:
    return {
        "devices": [
            {
                "uuid": f"u{i}",
                "path": f"/d{i}",
                "state": state,
                "reason": "" if state == "online" else "gone",
                "checksum_errors": errors[i],
                "read_errors": 0,
            }
            for i, state in enumerate(states)
        ],
        "capacity": {"size": 100, "used": used},
    }


async def until(check: Callable[[], bool], seconds: float = 10) -> None:
    """Wait for something outside trio (a file, the log) to come true."""
    with trio.fail_after(seconds):
        while not check():  # noqa: ASYNC110 (nothing to wait on but the file system)
            await trio.sleep(0.05)


def kinds(events: Events) -> list[str]:
    return [e["event"] for e in events.recent]


def test_changes_in_status_become_events() -> None:
    events = Events("p")
    watch = PoolWatch(events)
    watch.look(status(["online", "online", "online"], [0, 0, 0]))
    assert kinds(events) == [], "a healthy pool at the first look says nothing"
    watch.look(status(["online", "faulted", "online"], [0, 0, 3]))
    assert kinds(events) == ["device_faulted", "checksum_errors"]
    assert events.recent[-1]["new"] == 3 and events.recent[-1]["device"] == "/d2"
    watch.look(status(["online", "online", "missing"], [0, 0, 3], used=95))
    assert kinds(events)[2:] == ["device_online", "device_missing", "pool_nearly_full"]
    watch.look(status(["online", "online", "missing"], [0, 0, 3], used=96))
    assert len(events.recent) == 5, "nearly full is said once per crossing"


def test_a_pool_already_in_trouble_says_so_at_the_first_look() -> None:
    events = Events("p")
    PoolWatch(events).look(status(["missing", "online", "online"], [0, 0, 0]))
    assert kinds(events) == ["device_missing"]


async def test_the_hook_hears_each_event_and_bad_hooks_hold_nothing_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    heard = tmp_path / "heard"
    events = Events("p", ["sh", "-c", f"cat >> {heard}"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(events.run_hook)
        events.emit("scrub_finished", errors_found=0)
        events.emit("device_missing", device="/d1")
        await until(lambda: heard.exists() and heard.read_text().count("\n") == 2)
        nursery.cancel_scope.cancel()
    lines = [json.loads(line) for line in heard.read_text().splitlines()]
    assert [e["event"] for e in lines] == ["scrub_finished", "device_missing"]
    assert lines[1]["device"] == "/d1" and lines[1]["pool"] == "p"

    monkeypatch.setattr(_events, "HOOK_SECONDS", 0.5)
    caplog.set_level(logging.ERROR)
    for hook, said in (
        (["sh", "-c", "echo broken >&2; exit 3"], "exit 3"),
        (["sleep", "60"], "killed"),
    ):
        bad = Events("p", hook)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(bad.run_hook)
            for i in range(_events.QUEUE + 5):  # emit is not async: a full queue drops
                bad.emit("checksum_errors", new=i)

            def logged(said: str = said) -> bool:
                return said in caplog.text

            await until(logged)
            nursery.cancel_scope.cancel()
