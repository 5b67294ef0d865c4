"""Scrub as a job: a walk over every stripe, in batches, that a mounted pool runs
beside its users at a bounded share of the time, that can be paused, resumed and
stopped, and that picks up where it was after an unmount or a crash.

The job (cursor, counts, times) is kept in this machine's state directory after
every batch that ends a second or more after the last save, and at every change
of state. The walk goes segment by segment and reads each batch's stripe headers
only when the batch is due, so nothing is listed ahead: memory stays flat
however large the pool, and a segment deleted meanwhile is simply found empty.
It stops where the pool had made every stripe durable when the job (re)started
(DeviceArray.synced; later stripes may still be being written, and a scrub
covers what existed when it began, as ZFS's does). Each batch holds the pool's
segments lock, which garbage collection holds while it deletes segments, so a
batch never meets a segment half deleted.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from dwfs.chunks._events import Events
from dwfs.chunks._localstate import LocalState
from dwfs.devices import SHARD_HEADER_SIZE, DeviceArray, ScrubReport, finish_scrub, scrub_stripes
from dwfs.errors import Busy, UsageError

log = logging.getLogger(__name__)

BATCH = 32
"""Stripes one worker call verifies (about 8 MiB of chunks): pause and stop wait
for at most one batch."""
SAVE_EVERY = 1.0
"""Seconds between saves of a running job's cursor."""
LIVE_SHARE = 0.25
"""The share of the time a scrub of a mounted pool runs, unless told otherwise,
while the filesystem is in use: after a batch that took t seconds it rests
t * (1 - share) / share (docs/design.md, measured in docs/performance.md).
While nobody uses it, the scrub runs at full speed, as ZFS's does."""

RESILVER_WAIT = 2.0
"""Seconds between looks, while a resilver runs, at whether a scrub may go on."""

RUNNING, PAUSED, STOPPED, FINISHED = "running", "paused", "stopped", "finished"
STATES = (RUNNING, PAUSED, STOPPED, FINISHED)

Progress = Callable[[int, int, int], None]
"""Called with (stripes done, bytes examined, bytes to examine) after each batch."""


@dataclasses.dataclass
class ScrubJob:
    """A scrub's state: where it is, what it found, how long it took."""

    state: str
    started: float
    """When it began (seconds since the epoch)."""
    to_examine: int
    """Bytes of stripes on all devices when it began (an estimate until it ends)."""
    segment: int = 0
    offset: int = 0
    """Where the next batch starts."""
    examined: int = 0
    share: float = LIVE_SHARE
    """The share of the time it runs while the pool is mounted (in (0, 1])."""
    elapsed: float = 0.0
    """Seconds spent walking (pauses and rests not counted)."""
    ended: float | None = None
    error: str | None = None
    """Why it stopped, when something other than a user stopped it."""
    report: ScrubReport = dataclasses.field(default_factory=ScrubReport)

    def to_json(self) -> dict[str, Any]:
        """What status shows: progress, speed and time to go, like zpool's scan line."""
        speed = self.examined / self.elapsed if self.elapsed > 0 else 0.0
        left = max(self.to_examine - self.examined, 0)
        eta = left / speed if self.state == RUNNING and speed > 0 else None
        percent = 100.0 if self.state == FINISHED else _percent(self.examined, self.to_examine)
        return {
            "kind": "scrub",
            "state": self.state,
            "started": self.started,
            "ended": self.ended,
            "examined": self.examined,
            "to_examine": max(self.to_examine, self.examined),
            "percent": percent,
            "seconds": round(self.elapsed, 3),
            "share": self.share,
            "speed": round(speed),
            "eta": None if eta is None else round(eta),
            "error": self.error,
            **self.report.to_json(),
        }

    def saved(self) -> bytes:
        fields = dataclasses.asdict(self)
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def from_saved(cls, raw: bytes) -> ScrubJob | None:
        """A job read back from the state directory, or None if it is not one."""
        try:
            fields = json.loads(raw)
            report = ScrubReport(**{k: _count(v) for k, v in fields.pop("report").items()})
            job = cls(report=report, **fields)
            for number in (job.to_examine, job.segment, job.offset, job.examined):
                _count(number)
            for stamp in (job.started, job.elapsed, job.share):
                _real(stamp)
            if job.ended is not None:
                _real(job.ended)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if job.state not in STATES or not 0 < job.share <= 1:
            return None
        if job.error is not None and not isinstance(job.error, str):
            return None
        return job


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
        raise ValueError("not a count")
    return value


def _real(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError("not a number")
    return float(value)


def _percent(done: int, total: int) -> float:
    return round(min(100.0 * done / total, 99.9), 1) if total else 0.0


class Scrubber:
    """Runs scrub jobs on an open pool, one at a time, and keeps the last one."""

    def __init__(
        self,
        array: DeviceArray,
        sync: Callable[[], Awaitable[None]],
        local: LocalState,
        lock: trio.Lock,
        events: Events,
    ) -> None:
        self._array = array
        self._sync = sync
        self._local = local
        self._lock = lock
        self._events = events
        self._changed = trio.Event()
        self._limiter = trio.CapacityLimiter(1)
        self._saved_at = 0.0
        self.in_use: Callable[[], bool] = lambda: False
        """Set by the mount: whether the filesystem served requests just now
        (a scrub then keeps to its share of the time)."""
        raw = local.read("scrub.json")
        self.job = ScrubJob.from_saved(raw) if raw else None

    def start(self, share: float = LIVE_SHARE) -> ScrubJob:
        """Start a scrub, or resume a paused one, to run share of the time while
        the pool is mounted.

        Raises:
            Busy: one is running.
            UsageError: share is not in (0, 1].
        """
        if not 0 < share <= 1:
            raise UsageError(
                f"a scrub's share of the time must be above 0% and at most 100%, not {share:.0%}"
            )
        if self._array.resilvering():
            raise Busy("a resilver is under way: scrub when it is done (see dwfsctl status)")
        job = self.job
        if job is not None and job.state == RUNNING:
            done = _percent(job.examined, job.to_examine)
            raise Busy(
                f"a scrub is already running on this pool ({done}% done): wait for it, "
                "or pause or stop it with --pause or --stop"
            )
        if job is not None and job.state == PAUSED:
            job.state, job.share = RUNNING, share
        else:
            total = sum(self._array.segment_end(s) for s in self._array.segments())
            width = self._array.layout.width
            job = self.job = ScrubJob(RUNNING, time.time(), total * width, share=share)
        return self._changed_to(job)

    def pause(self) -> ScrubJob:
        """Pause the running scrub after its current batch (start() resumes it).

        Raises:
            UsageError: none is running.
        """
        job = self._current((RUNNING,), "pause")
        job.state = PAUSED
        return self._changed_to(job)

    def stop(self) -> ScrubJob:
        """Stop the running or paused scrub for good.

        Raises:
            UsageError: none is running or paused.
        """
        job = self._current((RUNNING, PAUSED), "stop")
        job.state, job.ended = STOPPED, time.time()
        return self._changed_to(job)

    def _current(self, states: tuple[str, ...], verb: str) -> ScrubJob:
        if self.job is None or self.job.state not in states:
            state = "no scrub" if self.job is None else f"the last scrub is {self.job.state}"
            raise UsageError(f"nothing to {verb}: {state}; start one with `dwfsctl scrub`")
        return self.job

    def _changed_to(self, job: ScrubJob) -> ScrubJob:
        self._save(job)
        self._changed.set()
        self._changed = trio.Event()
        return job

    def _save(self, job: ScrubJob) -> None:
        self._local.write("scrub.json", job.saved())
        self._saved_at = time.monotonic()

    async def serve(self) -> None:
        """Run scrubs as they are started (and one left running by the last mount),
        each at its share of the time, until cancelled (the pool closing)."""
        while True:
            job = self.job
            if job is None or job.state != RUNNING:
                await self._changed.wait()
                continue
            if self._array.resilvering():  # one left running goes on once the resilver is done
                await trio.sleep(RESILVER_WAIT)
                continue
            try:
                await self._run(job, job.share)
            except Exception as exc:
                log.exception("scrub stopped by an error")
                job.state, job.ended, job.error = STOPPED, time.time(), str(exc)
                self._save(job)

    async def run(self, progress: Progress | None = None) -> ScrubJob:
        """Start (or resume) a scrub and walk it to its end at full speed: a pool
        that is not mounted has no one to share the devices with."""
        job = self.job
        if job is None or job.state != RUNNING:  # else one was interrupted: it goes on
            job = self.start()
        await self._run(job, 1.0, progress)
        return job

    async def _run(self, job: ScrubJob, share: float, progress: Progress | None = None) -> None:
        try:
            await self._sync()
            bound = self._array.synced
            while job.state == RUNNING:
                began = time.monotonic()
                async with self._lock:
                    done = await trio.to_thread.run_sync(
                        self._step, job, bound, limiter=self._limiter
                    )
                spent = time.monotonic() - began
                job.elapsed += spent
                if done:
                    await self._finish(job)
                    return
                if progress is not None:
                    progress(job.report.stripes_checked, job.examined, job.to_examine)
                if time.monotonic() - self._saved_at >= SAVE_EVERY:
                    self._save(job)
                if share < 1 and self.in_use():
                    with trio.move_on_after(spent * (1 - share) / share):
                        await self._changed.wait()
        finally:
            if job.state != FINISHED:  # paused, stopped, or the pool closing mid-walk
                self._save(job)

    def _step(self, job: ScrubJob, bound: tuple[int, int]) -> bool:
        """Verify the next batch and move the cursor past it; whether the walk is over."""
        array = self._array
        end_segment, end_offset = bound
        if job.segment > end_segment:
            return True
        headers = []
        for header in array.stripes_in(job.segment, job.offset):
            if job.segment == end_segment and header.addr.offset >= end_offset:
                break
            headers.append(header)
            if len(headers) == BATCH:
                break
        if not headers:
            later = [s for s in array.segments() if s > job.segment]
            if not later or later[0] > end_segment:
                return True
            job.segment, job.offset = later[0], 0
            return False
        scrub_stripes(array, headers, job.report)
        last = headers[-1].addr
        after = last.offset + SHARD_HEADER_SIZE + last.shard_len
        job.examined += (after - job.offset) * array.layout.width
        job.offset = after
        return False

    async def _finish(self, job: ScrubJob) -> None:
        async with self._lock:
            await trio.to_thread.run_sync(finish_scrub, self._array, limiter=self._limiter)
        job.state, job.ended = FINISHED, time.time()
        job.to_examine = job.examined
        self._local.record_generation(self._array.generation)
        self._save(job)
        self._events.emit("scrub_finished", **job.report.to_json())
