"""Scrub jobs on real pools: pause, resume, stop, an interrupted walk picking up
where it was, and the job's record in the state directory as hostile input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from dwfs import open_pool
from dwfs.chunks import _scrub
from dwfs.chunks._scrub import FINISHED, PAUSED, RUNNING, STATES, STOPPED, ScrubJob
from dwfs.devices import ScrubReport
from dwfs.errors import Busy, UsageError
from tests.unit.chunks.test_pool import make, pw

counts = st.integers(min_value=0, max_value=(1 << 63) - 1)


@given(
    state=st.sampled_from(STATES),
    started=st.floats(min_value=0, max_value=4e9),
    numbers=st.lists(counts, min_size=8, max_size=8),
    share=st.floats(min_value=0.01, max_value=1.0),
    error=st.none() | st.text(max_size=50),
)
def test_a_job_reads_back_as_it_was_saved(
    state: str, started: float, numbers: list[int], share: float, error: str | None
) -> None:
    report = ScrubReport(*numbers[3:])
    job = ScrubJob(state, started, numbers[0], numbers[1], numbers[2], 7, share, 1.5, None, error)
    job.report = report
    assert ScrubJob.from_saved(job.saved()) == job


@given(
    st.binary(max_size=300)
    | st.builds(
        lambda o: json.dumps(o).encode(),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=10), inner, max_size=6)
            ),
            max_leaves=20,
        ),
    )
)
def test_anything_else_in_the_record_is_no_job(raw: bytes) -> None:
    job = ScrubJob.from_saved(raw)
    assert job is None or job.state in STATES


def test_a_tampered_record_is_no_job() -> None:
    good = json.loads(ScrubJob(RUNNING, 1.0, 100).saved())
    for key, bad in [
        ("state", "exploded"),
        ("segment", -1),
        ("offset", 1 << 64),
        ("examined", True),
        ("share", 0),
        ("share", 2),
        ("error", 5),
        ("report", {"stripes_checked": "many"}),
        ("unknown", 1),
    ]:
        assert ScrubJob.from_saved(json.dumps({**good, key: bad}).encode()) is None, key


async def _filled(tmp_path: Path) -> list[Path]:
    paths = make(tmp_path)
    rng = random.Random(1)
    async with open_pool(paths[0], pw()) as pool:
        for _ in range(8):
            await pool.store.put(rng.randbytes(400_000))
        await pool.store.sync()
    return paths


async def test_pause_resume_and_stop(tmp_path: Path) -> None:
    paths = await _filled(tmp_path)
    async with open_pool(paths[0], pw()) as pool:
        scrubber = pool.scrubber
        with pytest.raises(UsageError, match="nothing to pause"):
            scrubber.pause()
        scrubber.start(share=0.5)
        with pytest.raises(Busy, match="already running"):
            scrubber.start()
        assert scrubber.pause().state == PAUSED
        with pytest.raises(UsageError, match="nothing to pause"):
            scrubber.pause()
        assert scrubber.start().state == RUNNING, "a paused scrub resumes"
        assert scrubber.stop().state == STOPPED
        with pytest.raises(UsageError, match="nothing to stop"):
            scrubber.stop()
        job = await pool.scrub()
        assert job.state == FINISHED and job.report.unrepairable == 0
        assert job.report.stripes_checked > 20
        assert job.to_json()["percent"] == 100.0
    async with open_pool(paths[1], pw()) as pool:
        assert pool.status()["scan"]["state"] == FINISHED, "the last job is remembered"


async def test_an_interrupted_scrub_goes_on_where_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = await _filled(tmp_path)
    async with open_pool(paths[0], pw()) as pool:
        whole = (await pool.scrub()).report.stripes_checked
    monkeypatch.setattr(_scrub, "BATCH", 2)
    monkeypatch.setattr(_scrub, "SAVE_EVERY", 0.0)
    seen: list[int] = []
    async with open_pool(paths[0], pw()) as pool:
        with trio.move_on_after(30) as timer:
            async with trio.open_nursery() as nursery:

                def progress(stripes: int, examined: int, to_examine: int) -> None:
                    seen.append(stripes)
                    if stripes >= whole // 2:
                        nursery.cancel_scope.cancel()  # an unmount mid-walk

                nursery.start_soon(pool.scrub, progress)
        assert not timer.cancelled_caught
        assert pool.scrubber.job is not None and pool.scrubber.job.state == RUNNING
    async with open_pool(paths[0], pw()) as pool:
        job = pool.scrubber.job
        assert job is not None and job.state == RUNNING
        assert job.report.stripes_checked >= whole // 2, "the cursor was kept"
        done = await pool.scrub()
    assert done.state == FINISHED
    assert done.report.stripes_checked == whole, "every stripe once: none skipped, none twice"
    assert seen[0] <= 2
