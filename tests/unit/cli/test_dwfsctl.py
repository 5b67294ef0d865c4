"""dwfsctl as a user meets it: a real process, real directories, exit statuses,
one-line errors and no tracebacks."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dwfs.cli.cmd_mount import LOG_FORMAT, _OneLine

PASS = "correct horse battery staple\n"


def dwfsctl(
    *args: str | Path, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dwfs.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def ok(*args: str | Path, **kw: object) -> str:
    result = dwfsctl(*args, **kw)  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(code: int, *args: str | Path, match: str = "", **kw: object) -> str:
    result = dwfsctl(*args, **kw)  # type: ignore[arg-type]
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert match in lines[0], lines[0]
    return lines[0]


def pool_files(root: Path) -> dict[Path, bytes]:
    """Every file under root but the device locks, which any command that opens
    the pool creates (empty) and which are not pool data."""
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and p.name != "lock"}


@pytest.fixture
def pool(tmp_path: Path) -> tuple[Path, list[Path]]:
    secret = tmp_path / "pass"
    secret.write_text(PASS)
    secret.chmod(0o600)
    devices = [tmp_path / f"dev{i}" for i in range(4)]
    out = ok("create", "--raid", "raidz2", "--passphrase-file", secret, *devices)
    assert "created pool" in out
    return secret, devices


def test_status_json_shape(pool: tuple[Path, list[Path]]) -> None:
    secret, devices = pool
    status = json.loads(ok("status", "--json", "--passphrase-file", secret, devices[2]))
    assert status["state"] == "online"
    assert status["layout"] == {"name": "raidz2", "k": 2, "m": 2, "width": 4}
    assert [d["state"] for d in status["devices"]] == ["online"] * 4
    assert {"path", "read_errors", "checksum_errors"} <= set(status["devices"][0])
    assert status["capacity"]["size"] > 0 and status["capacity"]["used"] == 0
    text = ok("status", "--passphrase-file", secret, devices[0])
    assert "state: ONLINE" in text and "raidz2" in text


def test_passphrase_from_environment_and_stdin(pool: tuple[Path, list[Path]]) -> None:
    secret, devices = pool
    ok("status", devices[0], env={"DWFS_PASSPHRASE_FILE": str(secret)})
    ok("status", "--passphrase-file", "-", devices[0], stdin=PASS)
    fails(2, "status", devices[0], match="no passphrase given")


def test_degraded_scrub_replace(pool: tuple[Path, list[Path]], tmp_path: Path) -> None:
    secret, devices = pool
    shutil.rmtree(devices[1])
    shutil.rmtree(devices[3])
    status = json.loads(ok("status", "--json", "--passphrase-file", secret, devices[0]))
    assert status["state"] == "degraded"
    assert [d["state"] for d in status["devices"]] == ["online", "missing", "online", "missing"]
    assert "action:" in ok("status", "--passphrase-file", secret, devices[0])
    report = json.loads(ok("scrub", "--json", "--passphrase-file", secret, devices[0]))
    assert report["unrepairable"] == 0 and "stripes_checked" in report
    ok("replace", "--passphrase-file", secret, devices[0], devices[1], tmp_path / "new1")
    ok("replace", "--passphrase-file", secret, devices[0], devices[3], tmp_path / "new3")
    status = json.loads(ok("status", "--json", "--passphrase-file", secret, tmp_path / "new3"))
    assert status["state"] == "online"


def test_keys(pool: tuple[Path, list[Path]], tmp_path: Path) -> None:
    secret, devices = pool
    new = tmp_path / "new-pass"
    new.write_text("another passphrase\n")
    new.chmod(0o600)
    ok("key", "add", "--passphrase-file", secret, "--new-passphrase-file", new, devices[0])
    out = ok("key", "add", "--recovery", "--passphrase-file", new, devices[0])
    recovery = out.rsplit(": ", 1)[1].strip()
    rec_file = tmp_path / "rec"
    rec_file.write_text(recovery)
    rec_file.chmod(0o600)
    slots = json.loads(ok("key", "list", "--json", "--passphrase-file", rec_file, devices[1]))
    assert [s["kind"] for s in slots] == ["passphrase", "passphrase", "recovery"]
    ok("key", "remove", "--slot", "0", "--passphrase-file", new, devices[0])
    fails(3, "status", "--passphrase-file", secret, devices[0], match="wrong passphrase")
    ok("key", "change", "--passphrase-file", new, "--new-passphrase-file", secret, devices[0])
    ok("status", "--passphrase-file", secret, devices[0])
    fails(
        2,
        "key",
        "remove",
        "--slot",
        "9",
        "--passphrase-file",
        secret,
        devices[0],
        match="no keyslot 9",
    )


def test_bad_input_gets_one_line_and_changes_nothing(
    pool: tuple[Path, list[Path]], tmp_path: Path
) -> None:
    secret, devices = pool
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong\n")
    wrong.chmod(0o600)
    before = pool_files(tmp_path)
    fails(3, "status", "--passphrase-file", wrong, devices[0], match="wrong passphrase")
    fails(5, "status", "--passphrase-file", secret, tmp_path / "nope", match="does not exist")
    fails(5, "status", "--passphrase-file", secret, tmp_path, match="not a dwfs device")
    fails(
        2,
        "create",
        "--passphrase-file",
        secret,
        devices[0],
        tmp_path / "x",
        match="already belongs to dwfs pool",
    )
    fails(
        2,
        "create",
        "--raid",
        "raidz3",
        "--passphrase-file",
        secret,
        tmp_path / "a",
        tmp_path / "b",
        match="at least 5 devices",
    )
    fails(
        2,
        "create",
        "--raid",
        "bogus",
        "--passphrase-file",
        secret,
        tmp_path / "a",
        match="unknown layout",
    )
    fails(
        2,
        "create",
        "--passphrase-file",
        tmp_path / "missing",
        tmp_path / "a",
        match="cannot read the passphrase file",
    )
    fails(
        2,
        "replace",
        "--passphrase-file",
        secret,
        devices[0],
        "/not/a/member",
        tmp_path / "n",
        match="is not a device of pool",
    )
    fails(2, "frobnicate", match="invalid choice")
    assert pool_files(tmp_path) == before


def test_tampered_superblock_is_named(pool: tuple[Path, list[Path]]) -> None:
    secret, devices = pool
    sb = devices[0] / "superblock"
    data = bytearray(sb.read_bytes())
    data[data.index(b'"generation":1') + 13] = ord("7")
    sb.write_bytes(bytes(data))
    fails(4, "status", "--passphrase-file", secret, devices[0], match="fails authentication")
    status = json.loads(ok("status", "--json", "--passphrase-file", secret, devices[1]))
    assert status["devices"][0]["state"] == "faulted"


def test_help_lists_every_command() -> None:
    out = ok("--help")
    for command in ("create", "status", "scrub", "replace", "key"):
        assert command in out


def test_a_secret_file_other_users_can_read_is_refused(pool: tuple[Path, list[Path]]) -> None:
    secret, devices = pool
    before = pool_files(devices[0].parent)
    secret.chmod(0o644)
    fails(2, "status", "--passphrase-file", secret, devices[0], match="chmod 600")
    fails(2, "status", devices[0], match="chmod 600", env={"DWFS_PASSPHRASE_FILE": str(secret)})
    assert pool_files(devices[0].parent) == before
    secret.chmod(0o600)
    ok("status", "--passphrase-file", secret, devices[0])
    ok("status", "--passphrase-file", "-", devices[0], stdin=PASS)


def test_dwfsctl_makes_no_core_dumps_and_cannot_be_traced() -> None:
    probe = (
        "import ctypes, resource\n"
        "from dwfs.cli._secrets import protect_process\n"
        "protect_process()\n"
        "print(resource.getrlimit(resource.RLIMIT_CORE), ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.stdout.split("\n")[0] == "(0, 0) 0", result.stderr


def test_a_mount_in_the_foreground_shows_log_lines_without_tracebacks() -> None:
    """A traceback goes to mount.log, never to the terminal of `mount --foreground`
    (whichever handler formats the record first)."""
    try:
        raise RuntimeError("deep inside")
    except RuntimeError as exc:
        record = logging.LogRecord(
            "dwfs", logging.ERROR, __file__, 1, "the mount ended: %s", (exc,), sys.exc_info()
        )
    assert "Traceback" in logging.Formatter(LOG_FORMAT).format(record), "mount.log keeps it"
    terminal = _OneLine(LOG_FORMAT).format(record)
    assert terminal.endswith("the mount ended: deep inside") and "Traceback" not in terminal
    assert "Traceback" in logging.Formatter(LOG_FORMAT).format(record)
