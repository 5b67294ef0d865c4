# dwfs: `make run` to try it, `make test` to check it, `make bench` to measure it.
# `make fuzz` runs a coverage-guided fuzzer over every parser of device bytes
# (FUZZ_SECONDS per target, 20 by default).
# Every target that needs the environment runs `make setup` first, which installs
# what is missing (Debian packages, the virtual environment, the native extension)
# and does nothing when nothing changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := fuse3 libfuse3-dev pkg-config gcc rsync git sqlite3 fio gocryptfs attr acl
STAMP := $(VENV)/.setup-stamp
NATIVE := $(wildcard native/src/*.c native/include/*.h native/binding/*.c)
DEMO := .dwfs-demo

FUZZ_SECONDS ?= 20

.PHONY: setup run test bench fuzz lint native-test clean

setup: $(STAMP)

$(STAMP): setup.cfg setup.py pyproject.toml $(NATIVE)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: setup
	@$(PY) scripts/demo.py $(DEMO) mnt

native-test:
	@mkdir -p native/build
	@gcc -O2 -Wall -Wextra -Werror -Inative/include native/src/*.c native/tests/test_native.c -o native/build/test_native
	@native/build/test_native

lint: setup
	$(VENV)/bin/ruff check dwfs tests scripts
	$(VENV)/bin/ruff format --check dwfs tests scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The tests of the request path, run again on the pyfuse3 front end (the whole
# suite runs on the native one); see docs/design.md, "FUSE adapter".
FRONTEND_SUITE := $(addprefix tests/integration/,test_posix.py test_programs.py \
	test_model.py test_crash.py test_fsync_crash.py test_full_pool.py \
	test_kernel_limits.py test_mount_errors.py test_frontends.py)

test: setup native-test lint
	$(VENV)/bin/pytest -q
	DWFS_FRONTEND=pyfuse3 $(VENV)/bin/pytest -q $(FRONTEND_SUITE)

bench: setup
	@$(PY) -c "import zfec, pyeclib" 2>/dev/null || $(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) scripts/bench_blockstore.py
	$(PY) scripts/bench_mount.py
	$(PY) scripts/bench_snapshots.py
	$(PY) scripts/bench_snapshot_mount.py
	$(PY) scripts/bench_remote.py

fuzz: setup
	@$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install -q -e '.[dev,fuzz]'
	$(PY) scripts/fuzz.py $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) build native/build *.egg-info dwfs/*.so
