"""Builds dwfs's native extension; everything else is in setup.cfg."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "dwfs._native",
            sources=[
                "native/binding/_native.c",
                "native/src/gf256.c",
                "native/src/chunker.c",
            ],
            include_dirs=["native/include"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra"],
        )
    ]
)
