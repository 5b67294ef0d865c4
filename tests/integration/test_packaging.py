"""Installing dwfs as users do: a wheel built from the tree (with and without a
C compiler), and the Debian package, installed on this machine, mounting from
fstab's helper, and started the way its systemd unit starts it."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.integration.conftest import PASSPHRASE_TEXT, _wait_gone, mounted_at

TREE = Path(__file__).resolve().parents[2]
UNIT = TREE / "packaging" / "systemd" / "dwfs@.service"


def run(*args: str | Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run a program from / (so a python -m or -c finds no dwfs in the working directory)."""
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout, cwd="/"
    )
    assert result.returncode == 0, f"{args[0]} failed: {result.stderr[-2000:]}"
    return result.stdout


def source_copy(into: Path) -> Path:
    """The tree as a release would carry it: no venv, git, builds or extensions."""
    skip = {".venv", ".git", "build", "dist", ".dwfs-demo", "mnt"}

    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        parts = Path(info.name).parts
        if (len(parts) > 1 and parts[1] in skip) or info.name.endswith(".so"):
            return None
        return info

    into.mkdir()
    archive = into / "src.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(TREE, arcname="dwfs", filter=keep)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "dwfs"


def build_wheel(src: Path, out: Path, env: dict[str, str]) -> Path:
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, src, env=env)
    (wheel,) = out.glob("dwfs-*.whl")
    return wheel


def install_alone(wheel: Path, venv: Path) -> Path:
    """A virtual environment holding this wheel, with the dependencies of the
    test run's environment but not its editable dwfs; its python."""
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    (site,) = venv.glob("lib/python3*/site-packages")
    run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel)
    (site / "deps.pth").write_text(next(p for p in sys.path if p.endswith("site-packages")) + "\n")
    return venv / "bin" / "python"


def test_a_wheel_builds_with_and_without_a_compiler(tmp_path: Path) -> None:
    native = build_wheel(source_copy(tmp_path / "a"), tmp_path / "native", dict(os.environ))
    with zipfile.ZipFile(native) as wheel:
        names = wheel.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "dwfsctl = dwfs.cli.main:main" in wheel.read(entry_points).decode()
    assert any(n.startswith("dwfs/_native.") and n.endswith(".so") for n in names)
    assert any(n.startswith("dwfs/_fuse.") and n.endswith(".so") for n in names)
    assert any(n.endswith(".data/scripts/mount.dwfs") for n in names)

    no_compiler = {**os.environ, "CC": "false"}
    plain = build_wheel(source_copy(tmp_path / "b"), tmp_path / "plain", no_compiler)
    with zipfile.ZipFile(plain) as wheel:
        assert not [n for n in wheel.namelist() if n.endswith(".so")], "no compiler, no C"
    python = install_alone(plain, tmp_path / "venv")
    check = (
        "import dwfs, dwfs._accel as a, dwfs.fuse.native as n; "
        "print(dwfs.__file__, a.implementation(), n.available())"
    )
    where, *how = run(python, "-c", check).split(" ", 1)
    assert where.startswith(str(tmp_path / "venv")) and how == ["pure Python False\n"]
    pool = tmp_path / "pool"
    pool.mkdir()
    passfile = tmp_path / "pass"
    passfile.write_bytes(PASSPHRASE_TEXT + b"\n")
    passfile.chmod(0o600)
    devices = [pool / f"d{i}" for i in range(3)]
    env = dict(os.environ)
    dwfsctl = [str(python), "-m", "dwfs.cli.main"]
    run(*dwfsctl, "create", "--kdf", "standard", "--passphrase-file", passfile, *devices, env=env)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    run(*dwfsctl, "mount", "--passphrase-file", passfile, devices[0], mnt, env=env)
    try:
        data = os.urandom(3_000_000)
        (mnt / "f").write_bytes(data)
        run(*dwfsctl, "umount", mnt, env=env)
        run(*dwfsctl, "mount", "--passphrase-file", passfile, devices[1], mnt, env=env)
        assert (mnt / "f").read_bytes() == data, "the pure coder and chunker, through pyfuse3"
        status = run(*dwfsctl, "status", mnt, env=env)
        assert "pure Python" in status and "pyfuse3 front end" in status
    finally:
        if mounted_at(mnt):
            subprocess.run([*dwfsctl, "umount", str(mnt)], env=env, capture_output=True, cwd="/")


def unit_command(conf: dict[str, str]) -> list[str]:
    """The unit's ExecStart, with ${VAR} replaced as systemd replaces it."""
    line = next(x for x in UNIT.read_text().splitlines() if x.startswith("ExecStart="))
    words = line.removeprefix("ExecStart=").split()
    return [conf.get(w[2:-1], "") if w.startswith("${") else w for w in words]


needs_debian = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("dpkg-deb") or not shutil.which("systemd-analyze"),
    reason="needs root, dpkg and systemd-analyze",
)


@needs_debian
def test_the_debian_package_installs_mounts_and_runs_as_a_service(tmp_path: Path) -> None:
    if subprocess.run(["dpkg", "-s", "dwfs"], capture_output=True).returncode == 0:
        pytest.skip("a dwfs package is installed here already; not replacing it")
    out = run("sh", TREE / "packaging" / "debian" / "build.sh", tmp_path / "out").strip()
    info = run("dpkg-deb", "--info", out)
    assert "Package: dwfs" in info and "Depends: python3.11, fuse3" in info
    conf = Path("/etc/dwfs/pkgtest.conf")
    run("dpkg", "-i", out)
    try:
        assert run("/usr/bin/dwfsctl", "--version").startswith("dwfs ")
        assert "verify every stripe" in Path("/usr/share/doc/dwfs/dwfsctl.txt").read_text()

        passfile = tmp_path / "pass"
        passfile.write_bytes(PASSPHRASE_TEXT + b"\n")
        passfile.chmod(0o600)
        devices = [tmp_path / f"d{i}" for i in range(3)]
        run("/usr/bin/dwfsctl", "create", "--passphrase-file", passfile, *devices)
        mnt = tmp_path / "mnt"
        mnt.mkdir()

        run("mount", "-t", "dwfs", devices[0], mnt, "-o", f"passfile={passfile},nosuid")
        (mnt / "f").write_bytes(b"through fstab's helper\n")
        run("umount", mnt)
        assert not mounted_at(mnt)

        values = {
            "DWFS_DEVICE": str(devices[1]),
            "DWFS_MOUNTPOINT": str(mnt),
            "DWFS_PASSFILE": str(passfile),
            "DWFS_OPTIONS": "allow_other",
        }
        conf.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        assert run("systemd-analyze", "verify", "dwfs@pkgtest.service") == ""
        broken = tmp_path / "units" / "dwfs@.service"
        broken.parent.mkdir()
        broken.write_text(UNIT.read_text().replace("Type=notify", "Type=eventually"))
        bad = subprocess.run(
            ["systemd-analyze", "verify", f"{broken.parent}/dwfs@x.service"],
            capture_output=True,
            text=True,
        )
        assert bad.returncode != 0 or "eventually" in bad.stderr, "verify checks something"

        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
            notify.bind(str(tmp_path / "notify"))
            notify.settimeout(120)
            env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
            journal = open(tmp_path / "journal", "wb")  # noqa: SIM115 (closed below)
            service = subprocess.Popen(unit_command(values), env=env, stderr=journal)
            try:
                assert notify.recv(64) == b"READY=1", "Type=notify hears when it answers"
                assert (mnt / "f").read_bytes() == b"through fstab's helper\n"
                service.send_signal(signal.SIGTERM)  # systemctl stop
                assert service.wait(timeout=120) == 0
                assert not mounted_at(mnt)
            finally:
                if service.poll() is None:
                    service.kill()
                    _wait_gone(service.pid)
                subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
                journal.close()
            assert b"mounted at" in (tmp_path / "journal").read_bytes(), "it logs to stderr"
    finally:
        conf.unlink(missing_ok=True)
        run("dpkg", "--purge", "dwfs")
    assert not Path("/opt/dwfs").exists() and not Path("/usr/bin/dwfsctl").exists()
