"""Builds dwfs's native extensions; everything else is in setup.cfg.

dwfs._native (the coder and the chunker) needs only a C compiler. dwfs._fuse
(the native FUSE front end) also needs libfuse3's headers; where pkg-config
does not find them it is left out, and mounts use pyfuse3. Both are optional:
where they do not build (no compiler), the install goes on without them and
dwfs runs its pure-Python paths (slower, the same results).
"""

import shutil
import subprocess

from setuptools import Extension, setup

CFLAGS = ["-O3", "-std=c11", "-Wall", "-Wextra"]


def fuse3_flags() -> tuple[list[str], list[str]] | None:
    """(compile flags, link flags) of libfuse3, or None where it is not installed."""
    if shutil.which("pkg-config") is None:
        return None
    try:
        cflags = subprocess.run(
            ["pkg-config", "--cflags", "fuse3"], capture_output=True, text=True, check=True
        ).stdout.split()
        libs = subprocess.run(
            ["pkg-config", "--libs", "fuse3"], capture_output=True, text=True, check=True
        ).stdout.split()
    except subprocess.CalledProcessError:
        return None
    return cflags, libs


extensions = [
    Extension(
        "dwfs._native",
        sources=[
            "native/binding/_native.c",
            "native/src/gf256.c",
            "native/src/chunker.c",
            "native/src/flush.c",
            "native/src/direct.c",
        ],
        include_dirs=["native/include"],
        extra_compile_args=CFLAGS,
        optional=True,
    )
]
fuse3 = fuse3_flags()
if fuse3 is not None:
    extensions.append(
        Extension(
            "dwfs._fuse",
            sources=[
                "native/binding/_fuse.c",
                "native/src/readcache.c",
                "native/src/entrycache.c",
                "native/src/fusecheck.c",
            ],
            include_dirs=["native/include"],
            extra_compile_args=[*CFLAGS, *fuse3[0]],
            extra_link_args=fuse3[1] + ["-lpthread"],
            optional=True,
        )
    )

setup(ext_modules=extensions)
