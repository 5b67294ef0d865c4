"""dwfsctl stats and the metrics listener of a real mount."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

from tests.integration.conftest import PoolFactory, dwfsctl, mounted_at


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_stats_and_metrics_of_a_mount(make_pool: PoolFactory) -> None:
    pool = make_pool(mount=False)
    port = free_port()
    pool.mount(None, f"metrics=127.0.0.1:{port}")
    data = bytes(range(256)) * 4096
    for i in range(20):
        (pool.mnt / f"f{i}").write_bytes(data)
    for i in range(20):
        assert (pool.mnt / f"f{i}").read_bytes() == data
    (pool.mnt / "copy").write_bytes(data)  # deduplicated against f0

    stats = pool.stored()
    assert stats["unstored"]["files"] == 0
    assert stats["bytes_written"] >= 21 * len(data)
    for kind in ("create", "write", "release", "lookup"):
        assert stats["requests"][kind]["count"] >= 20, kind
        assert stats["requests"][kind]["p50"] is not None
    assert stats["store"]["compression_ratio"] > 2, "the data repeats"
    text = pool.ctl("stats", pool.mnt).stdout
    assert "REQUEST" in text and "chunk cache:" in text and "journal:" in text

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        scraped = answer.read().decode()
    assert f'dwfs_written_bytes_total{{pool="{stats["pool"]}"}}' in scraped
    assert 'kind="create",le="+Inf"' in scraped
    printed = pool.ctl("stats", "--prometheus", pool.mnt).stdout
    assert printed.splitlines()[:2] == scraped.splitlines()[:2]
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=10)
        raise AssertionError("only /metrics is served")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404


def test_a_metrics_port_in_use_refuses_the_mount(make_pool: PoolFactory) -> None:
    pool = make_pool(mount=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = dwfsctl(
            "mount",
            "-o",
            f"metrics=127.0.0.1:{port}",
            "--passphrase-file",
            pool.passfile,
            pool.devices[0],
            pool.mnt,
            check=False,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "choose another port" in result.stderr
    assert not mounted_at(pool.mnt)
    pool.mount()
    assert json.loads(pool.ctl("stats", "--json", pool.mnt).stdout)["bytes_written"] == 0
