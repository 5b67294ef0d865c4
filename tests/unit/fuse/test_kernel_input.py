"""Bad input from the kernel side: the native front end served over a socket
(libfuse takes /dev/fd/N as its device), with the test speaking the kernel's
FUSE protocol. Requests for inodes and handles that do not exist, malformed
requests (cut short, names without their NUL, a length that lies, data that
is not there), unknown opcodes and random requests each get an errno reply,
or none where the kernel expects none, and the session keeps answering."""

from __future__ import annotations

import errno
import os
import random
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from dwfs import Credential, PoolOptions, create_pool
from dwfs.chunks import PASSPHRASE
from dwfs.fuse import native
from dwfs.vfs import Volume, open_volume
from tests.conftest import FAST_KDF

pytestmark = pytest.mark.skipif(not native.available(), reason="the native front end is not built")

HEADER = struct.Struct("<IIQQIIIHH")
OUT = struct.Struct("<IiQ")
ROOT = 1
LOOKUP, FORGET, GETATTR, READ, WRITE, SETXATTR = 1, 2, 3, 15, 16, 21
INIT, OPENDIR, DESTROY, BATCH_FORGET = 26, 27, 38, 42
READ_IN = struct.Struct("<QQIIQII")
WRITE_IN = struct.Struct("<QQIIQII")
GETATTR_IN = struct.Struct("<IIQ")


class Kernel:
    """The kernel's end of a FUSE session, over a SOCK_SEQPACKET socket."""

    def __init__(self, sock: trio.socket.SocketType) -> None:
        self.sock = sock
        self.unique = 0
        self.replies: dict[int, tuple[int, bytes]] = {}

    async def send(self, opcode: int, nodeid: int, body: bytes = b"", lie: int = 0) -> int:
        self.unique += 1
        length = HEADER.size + len(body) + lie
        header = HEADER.pack(length, opcode, self.unique, nodeid, 0, 0, os.getpid(), 0, 0)
        await self.sock.send(header + body)
        return self.unique

    async def reply(self, unique: int) -> tuple[int, bytes]:
        """The errno (negative, or 0) and payload of the reply to `unique`."""
        with trio.fail_after(30):
            while unique not in self.replies:
                data = await self.sock.recv(4 << 20)
                assert len(data) >= OUT.size, "a reply shorter than its header"
                length, error, answered = OUT.unpack_from(data)
                assert length == len(data), "a reply whose length lies"
                assert -4095 <= error <= 0, f"a reply with error {error}"
                self.replies[answered] = (error, data[OUT.size :])
        return self.replies.pop(unique)

    async def call(self, opcode: int, nodeid: int, body: bytes = b"", lie: int = 0) -> int:
        """Send a request and return its reply's errno (0 for success)."""
        error, _ = await self.reply(await self.send(opcode, nodeid, body, lie))
        return -error

    async def root_answers(self) -> None:
        assert await self.call(GETATTR, ROOT, GETATTR_IN.pack(0, 0, 0)) == 0


@asynccontextmanager
async def kernel_side(tmp_path: Path) -> AsyncIterator[tuple[Kernel, native.NativeSession]]:
    devices = [tmp_path / f"d{i}" for i in range(3)]
    create_pool(
        devices, Credential(PASSPHRASE, bytearray(b"pw")), PoolOptions("raidz1", kdf=FAST_KDF)
    )
    credential = Credential(PASSPHRASE, bytearray(b"pw"))
    async with open_volume(devices[0], credential) as volume, serving(volume) as both:
        yield both


@asynccontextmanager
async def serving(volume: Volume) -> AsyncIterator[tuple[Kernel, native.NativeSession]]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    device = Path(f"/dev/fd/{theirs.detach()}")
    session = native.NativeSession(volume, device, {"default_permissions"})
    kernel = Kernel(trio.socket.from_stdlib_socket(ours))
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(session.serve)
            assert await kernel.call(INIT, 0, struct.pack("<IIII", 7, 31, 1 << 17, 0)) == 0
            yield kernel, session
            kernel.sock.close()  # the session sees its device end, as at unmount
    finally:
        session.close(unmount=False)


async def test_unknown_inodes_and_handles_get_errno_replies(tmp_path: Path) -> None:
    async with kernel_side(tmp_path) as (kernel, _):
        await kernel.root_answers()
        assert await kernel.call(GETATTR, 424242, GETATTR_IN.pack(0, 0, 0)) == errno.ENOENT
        assert await kernel.call(LOOKUP, 424242, b"name\0") in (0, errno.ENOENT)
        assert await kernel.call(READ, ROOT, READ_IN.pack(987654, 0, 4096, 0, 0, 0, 0)) != 0
        data = b"x" * 100
        write = WRITE_IN.pack(987654, 0, len(data), 0, 0, 0, 0) + data
        assert await kernel.call(WRITE, ROOT, write) != 0
        await kernel.send(FORGET, 424242, struct.pack("<Q", 5))
        await kernel.root_answers()


async def test_malformed_requests_get_einval_before_libfuse_reads_them(tmp_path: Path) -> None:
    async with kernel_side(tmp_path) as (kernel, session):
        full_read = READ_IN.pack(1, 0, 4096, 0, 0, 0, 0)
        assert await kernel.call(READ, ROOT, full_read[:8]) == errno.EINVAL
        assert await kernel.call(LOOKUP, ROOT, b"no-terminator") == errno.EINVAL
        assert await kernel.call(GETATTR, ROOT, GETATTR_IN.pack(0, 0, 0), lie=5) == errno.EINVAL
        short = WRITE_IN.pack(1, 0, 1000, 0, 0, 0, 0) + b"only this"
        assert await kernel.call(WRITE, ROOT, short) == errno.EINVAL
        xattr = struct.pack("<II", 50, 0) + b"user.x\0abc"
        assert await kernel.call(SETXATTR, ROOT, xattr) == errno.EINVAL
        await kernel.send(BATCH_FORGET, 0, struct.pack("<II", 1 << 30, 0) + bytes(16))
        await kernel.root_answers()  # answered after the forget, which has no answer
        assert session.figures()["rejected"] == 6
        assert await kernel.call(4242, ROOT) == errno.ENOSYS
        assert await kernel.call(LOOKUP, ROOT, b"x" * 5000 + b"\0") == errno.ENAMETOOLONG
        await kernel.root_answers()


async def test_random_requests_never_stop_the_session(tmp_path: Path) -> None:
    """Random opcodes, node ids and argument bytes (lengths mostly right):
    every reply is well formed, and the root still answers after each."""
    rng = random.Random(1203)
    opcodes = [op for op in range(1, 52) if op not in (INIT, DESTROY)]
    async with kernel_side(tmp_path) as (kernel, _):
        for _ in range(1500):
            opcode = rng.choice(opcodes)
            nodeid = rng.choice([0, ROOT, 2, 3, rng.getrandbits(64)])
            body = rng.randbytes(rng.choice([0, 4, 8, 16, 24, 40, 64, 88, rng.randrange(200)]))
            if rng.random() < 0.5:
                body += rng.choice([b"name\0", b"a\0b\0", b"user.x\0v", b".\0", b"..\0"])
            lie = rng.choice([0] * 9 + [rng.randrange(-8, 8)])
            await kernel.send(opcode, nodeid, body, lie)
            await kernel.root_answers()
