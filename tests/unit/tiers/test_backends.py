"""Every backend against a real remote: a directory, moto's S3 server, rclone
serving S3 (a second S3 implementation, which sends checksums with ranged GETs)
and the real rclone with a local remote. The same semantics hold on each: whole objects,
ranged reads, missing objects named as such, listings, idempotent deletes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dwfs.errors import ObjectMissing, RemoteError
from dwfs.tiers import Backend, open_backend, probe
from tests.servers import S3Server, rclone_s3


@pytest.fixture(params=["dir", "s3", "s3-rclone", "rclone"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    served = contextlib.ExitStack()
    if request.param == "dir":
        url = f"dir://{tmp_path}/remote"
    elif request.param == "s3":
        server: S3Server = request.getfixturevalue("s3_env")
        url = f"s3://{server.new_bucket()}/pools/one"
    elif request.param == "s3-rclone":
        rclone = served.enter_context(rclone_s3(tmp_path))
        for name, value in rclone.env().items():
            monkeypatch.setenv(name, value)
        url = f"s3://{rclone.new_bucket()}/pools/one"
    else:
        monkeypatch.setenv("RCLONE_CONFIG", os.devnull)
        monkeypatch.setenv("RCLONE_CONFIG_DWFSTEST_TYPE", "local")
        url = f"rclone:dwfstest:{tmp_path}/rclone"
        (tmp_path / "rclone").mkdir()
    with served:
        opened = open_backend(url)
        yield opened
        opened.close()


def test_objects_round_trip_whole_and_by_range(backend: Backend) -> None:
    data = os.urandom(300_000)
    backend.put("packs/ab/0123abcd", data)
    assert backend.get("packs/ab/0123abcd") == data
    assert backend.get("packs/ab/0123abcd", 1000, 5000) == data[1000:6000]
    assert backend.get("packs/ab/0123abcd", 299_990) == data[299_990:]
    assert backend.size("packs/ab/0123abcd") == len(data)
    backend.put("packs/ab/0123abcd", b"replaced")
    assert backend.get("packs/ab/0123abcd") == b"replaced"


def test_missing_objects_are_named_as_missing(backend: Backend) -> None:
    assert backend.size("superblock") is None
    with pytest.raises(ObjectMissing):
        backend.get("superblock")
    with pytest.raises(ObjectMissing):
        backend.get("packs/00/ff", 0, 10)
    backend.delete("superblock")


def test_a_range_past_the_end_is_refused_not_shortened(backend: Backend) -> None:
    backend.put("superblock", b"0123456789")
    with pytest.raises(RemoteError, match="shorter than dwfs wrote it"):
        backend.get("superblock", 5, 10)


def test_listing_names_a_folders_objects(backend: Backend) -> None:
    assert backend.list("packs/") == []
    for name in ("packs/a1", "packs/b2", "packs/c3/d4", "journal/1", "superblock"):
        backend.put(name, name.encode())
    assert backend.list("packs/") == ["packs/a1", "packs/b2", "packs/c3/d4"]
    backend.delete("packs/a1")
    backend.delete("packs/a1")
    assert backend.list("packs/") == ["packs/b2", "packs/c3/d4"]


def test_a_probe_writes_and_removes_an_object(backend: Backend, tmp_path: Path) -> None:
    probe(backend)
    if backend.url.startswith("dir://"):
        assert list((tmp_path / "remote").iterdir()) == []


@pytest.mark.parametrize("name", ["../x", "Superblock", "a//b", "/abs", "packs/", ""])
def test_names_other_than_ours_are_refused(backend: Backend, name: str) -> None:
    with pytest.raises(Exception, match="not an object name"):
        backend.put(name, b"x")
