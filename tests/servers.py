"""Real servers for the tests, started on loopback: an S3 server (moto's server
mode) and rclone serving S3 over a local directory, each a process the fixture
owns and stops."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port}")


@contextlib.contextmanager
def running(
    command: list[str], port: int, what: str, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_for(port, process, what)
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class S3Server:
    """An S3 endpoint on loopback and the credentials it takes."""

    def __init__(
        self, endpoint: str, key: str, secret: str, process: subprocess.Popen[bytes]
    ) -> None:
        self.endpoint = endpoint
        self.key = key
        self.secret = secret
        self.process = process

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def new_bucket(self) -> str:
        import boto3

        name = f"dwfs-{secrets.token_hex(6)}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
        )
        client.create_bucket(Bucket=name)
        client.close()
        return name


@contextlib.contextmanager
def moto_s3(workdir: Path) -> Iterator[S3Server]:
    port = free_port()
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with running(command, port, "moto_server", workdir / "moto.log") as process:
        yield S3Server(f"http://127.0.0.1:{port}", "test", "test", process)


@contextlib.contextmanager
def rclone_s3(workdir: Path) -> Iterator[S3Server]:
    """rclone serving S3 over a local directory, with credentials it checks."""
    port = free_port()
    root = workdir / "rclone-s3"
    root.mkdir(exist_ok=True)
    key, secret = "dwfs-test", secrets.token_hex(16)
    command = [
        str(BIN / "rclone"),
        "serve",
        "s3",
        "--addr",
        f"127.0.0.1:{port}",
        "--auth-key",
        f"{key},{secret}",
        "--config",
        os.devnull,
        str(root),
    ]
    with running(command, port, "rclone serve s3", workdir / "rclone-s3.log") as process:
        yield S3Server(f"http://127.0.0.1:{port}", key, secret, process)
