from __future__ import annotations

import random
import subprocess
import sys

from hypothesis import given
from hypothesis import strategies as st

from dwfs.chunks import Chunker, ChunkerParams

SMALL = ChunkerParams(min_size=256, avg_size=1024, max_size=4096)


@given(st.binary(max_size=40_000), st.binary(min_size=32, max_size=32))
def test_chunks_tile_the_input_within_bounds(data: bytes, key: bytes) -> None:
    cuts = Chunker(SMALL, key).cut(data)
    assert sum(cuts) == len(data)
    assert all(c <= SMALL.max_size for c in cuts)
    assert all(c >= SMALL.min_size for c in cuts[:-1])


def test_boundaries_survive_an_insertion() -> None:
    rng = random.Random(1)
    data = rng.randbytes(400_000)
    chunker = Chunker(SMALL, b"k" * 32)
    before = _chunks(data, chunker.cut(data))
    edited = data[:1000] + b"inserted" + data[1000:]
    after = _chunks(edited, chunker.cut(edited))
    assert len(set(before) & set(after)) >= len(before) - 3


def test_key_changes_boundaries_and_average_is_near_target() -> None:
    data = random.Random(2).randbytes(2_000_000)
    a = Chunker(SMALL, b"a" * 32).cut(data)
    b = Chunker(SMALL, b"b" * 32).cut(data)
    assert a != b
    assert 0.6 * SMALL.avg_size < len(data) / len(a) < 1.6 * SMALL.avg_size


def test_not_final_holds_back_the_tail() -> None:
    data = random.Random(3).randbytes(50_000)
    chunker = Chunker(SMALL, b"c" * 32)
    partial = chunker.cut(data, final=False)
    assert sum(partial) < len(data)
    assert partial == chunker.cut(data)[: len(partial)]


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    out, pos = [], 0
    for c in cuts:
        out.append(data[pos : pos + c])
        pos += c
    return out


def test_the_chunker_runs_on_a_thread_with_a_small_stack() -> None:
    """Worker threads may have small stacks (musl: 128 KiB): the chunker keeps its
    cut list on the heap. In a child process, since a stack overflow kills it."""
    probe = (
        "import threading\n"
        "from dwfs.chunks import Chunker, ChunkerParams\n"
        "threading.stack_size(192 * 1024)\n"
        "out = []\n"
        "c = Chunker(ChunkerParams(min_size=256, avg_size=1024, max_size=4096), b'k' * 32)\n"
        "t = threading.Thread(target=lambda: out.append(sum(c.cut(bytes(range(256)) * 400))))\n"
        "t.start(); t.join(); print(out[0])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "102400", result.stderr
