"""A commit that fails (too few devices took its journal record) loses nothing
and forks nothing: the next commit appends the same record first, in the same
place on every device that kept its slot, and a mount after an unclean stop
replays both txgs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dwfs import PoolOptions, create_pool, open_pool
from dwfs.errors import DeviceError
from dwfs.meta import Metadata
from tests.conftest import FAST_KDF, fill_disk
from tests.unit.chunks.test_pool import SMALL, pw
from tests.unit.meta.test_freshness import epochs, names, record_bounds


@pytest.mark.parametrize("inline", [False, True], ids=["commit", "commit_now"])
async def test_a_failed_commit_is_finished_by_the_next_one(
    tmp_path: Path, small_tmpfs: Callable[[int], Path], inline: bool
) -> None:
    paths = [tmp_path / "d0", small_tmpfs(16) / "d1", small_tmpfs(16) / "d2"]
    create_pool(paths, pw(), PoolOptions(layout="raidz1", kdf=FAST_KDF, chunker=SMALL))
    async with open_pool(paths[0], pw()) as pool:
        meta = await Metadata.open(pool)
        hogs = [fill_disk(path.parent) for path in paths[1:]]  # no room for a journal epoch
        meta.db.execute("chunk.upsert", (b"a", 0, 0, 0, 0, 0))
        with pytest.raises(DeviceError, match="reached only 1 devices"):
            if inline:
                meta.commit_now()
            else:
                await meta.commit()
        assert meta.durable_txg == meta.db.txg - 1
        assert not meta.commit_now(), "the failed txg is left for commit() to finish"
        meta.db.execute("chunk.upsert", (b"b", 0, 0, 0, 0, 0))
        await meta.commit()  # the two full devices are faulted: d0 alone is the journal
        assert meta.durable_txg == meta.db.txg
    for hog in hogs:
        hog.unlink()
    newest = epochs(paths[0])[-1].read_bytes()
    assert len(record_bounds(newest)) == 2, "each txg's record once, in order"
    assert await names(paths[0]) == {"a", "b"}
