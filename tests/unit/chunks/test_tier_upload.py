"""Uploads to a remote that stops answering fail with TierUnavailable itself,
not wrapped in the exception group of the nursery that sends packs at once:
the mount's uploader and periodic sync catch DwfsError and retry, and an
error they missed ended the mount."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dwfs import open_pool
from dwfs.errors import TierUnavailable
from tests.servers import rclone_s3
from tests.unit.chunks.test_pool import make, pw


async def test_an_upload_to_a_remote_that_stops_answering_raises_tier_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = make(tmp_path)
    with rclone_s3(tmp_path) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        async with open_pool(paths[0], pw()) as pool:
            refs = await pool.store.put(os.urandom(3 << 20))
            chunks = [(ref.chunk_id, ref.addr) for ref in refs]
            tier = pool.connect(f"s3://{server.new_bucket()}", timeout=1)
            assert len(await tier.upload(chunks[:2])) == 2, "the remote answers at first"
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                with pytest.raises(TierUnavailable):
                    await tier.upload(chunks)
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            assert len(await tier.upload(chunks)) == len(chunks), "and again once it is back"
