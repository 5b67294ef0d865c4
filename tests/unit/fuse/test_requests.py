"""The request wait that polls before it parks, on real pipes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pyfuse3
import pytest
import trio
import trio.testing

from dwfs.fuse import requests
from dwfs.fuse.requests import YIELD_EVERY, Waiter


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    os.close(r)
    os.close(w)


def test_pyfuse3_still_has_the_hook_we_replace() -> None:
    """If this fails, pyfuse3 changed its loop: mounts run with its own wait again."""
    assert callable(getattr(pyfuse3, requests.HOOK))


def _other_task_ran(r: int, w: int, waits: int) -> bool:
    """Whether a task started beside `waits` waits on a ready fd got to run."""
    os.write(w, b"x")
    waiter = Waiter(r)
    ran: list[int] = []

    async def note() -> None:
        ran.append(1)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(note)
            for _ in range(waits):
                assert await waiter()
            ran.append(0)  # marks the end of the waits

    trio.run(main)
    return ran.index(1) < ran.index(0)


def test_a_queued_request_is_taken_without_parking(pipe: tuple[int, int]) -> None:
    assert not _other_task_ran(*pipe, waits=1), "no checkpoint before the first read"


def test_an_empty_fd_parks_until_a_request_arrives(pipe: tuple[int, int]) -> None:
    r, w = pipe
    waiter = Waiter(r)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_write_later, w)
            with trio.fail_after(5):
                assert await waiter()
            assert os.read(r, 1) == b"y"

    trio.run(main)


async def _write_later(w: int) -> None:
    await trio.sleep(0.05)
    os.write(w, b"y")


def test_a_stream_of_ready_requests_lets_other_tasks_run(pipe: tuple[int, int]) -> None:
    # the first checkpoint's batch ends within the second run of YIELD_EVERY waits
    assert _other_task_ran(*pipe, waits=2 * YIELD_EVERY)


def test_terminate_ends_the_waiter_and_every_later_one(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    waiter = Waiter(r)

    async def main() -> None:
        results: list[bool] = []

        async def wait() -> None:
            results.append(await waiter())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait)
            nursery.start_soon(wait)
            await trio.testing.wait_all_tasks_blocked()
            trio.lowlevel.notify_closing(r)  # what pyfuse3.terminate() does
        assert results == [False, False]
        with trio.fail_after(5):
            assert await waiter() is False

    trio.run(main)


def test_a_woken_waiter_whose_request_was_taken_parks_again(pipe: tuple[int, int]) -> None:
    """Woken by epoll, the parked task may find that a task running in the same
    batch took the request; trio orders a batch at random, so both orders occur."""
    r, w = pipe
    os.set_blocking(r, False)
    waiter = Waiter(r)
    rounds = 64
    taken = {"parked": 0, "other": 0}

    async def parked() -> None:
        while await waiter():
            os.read(r, 1)  # BlockingIOError if it was sent on without a request
            taken["parked"] += 1

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(parked)
            for _ in range(rounds):
                await trio.testing.wait_all_tasks_blocked()
                os.write(w, b"x")
                await trio.lowlevel.checkpoint()  # epoll wakes the parked task
                with contextlib.suppress(BlockingIOError):
                    os.read(r, 1)
                    taken["other"] += 1
            await trio.testing.wait_all_tasks_blocked()
            waiter.close()
            trio.lowlevel.notify_closing(r)

    trio.run(main)
    assert taken["parked"] + taken["other"] == rounds
    assert taken["parked"] and taken["other"]


def test_close_ends_every_later_wait(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, b"x")
    waiter = Waiter(r)
    waiter.close()
    assert trio.run(waiter) is False


def test_install_needs_exactly_one_new_descriptor(
    pipe: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    r, w = pipe
    monkeypatch.setattr(pyfuse3, requests.HOOK, getattr(pyfuse3, requests.HOOK))
    original = getattr(pyfuse3, requests.HOOK)
    assert requests.install(set()) is None
    assert requests.install({r, w}) is None
    assert getattr(pyfuse3, requests.HOOK) is original
    waiter = requests.install({r})
    assert waiter is not None
    assert getattr(pyfuse3, requests.HOOK) is waiter


def test_fuse_fds_finds_an_open_dev_fuse() -> None:
    fd = os.open("/dev/fuse", os.O_RDWR)
    try:
        assert fd in requests.fuse_fds()
    finally:
        os.close(fd)
    assert fd not in requests.fuse_fds()
