# dwfs: `make run` to try it, `make test` to check it, `make bench` to measure it.
# `make fuzz` runs a coverage-guided fuzzer over every parser of device bytes
# (FUZZ_SECONDS per target, 20 by default).
# Every target that needs the environment runs `make setup` first, which installs
# what is missing (Debian packages, the virtual environment, the native extension)
# and does nothing when nothing changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := fuse3 libfuse3-dev pkg-config gcc rsync git sqlite3 fio gocryptfs attr acl \
	python3.11-venv systemd libssl-dev
STAMP := $(VENV)/.setup-stamp
NATIVE := $(wildcard native/src/*.c native/include/*.h native/binding/*.c)
DEMO := .dwfs-demo

FUZZ_SECONDS ?= 20

.PHONY: setup run test sanitize-test bench fuzz lint native-test clean

setup: $(STAMP)

$(STAMP): Makefile setup.cfg setup.py pyproject.toml $(NATIVE)
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
	@for t in test_native test_readcache test_entrycache test_fusecheck; do \
		gcc -O2 -g -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=undefined \
			-Inative/include native/src/*.c native/tests/$$t.c -o native/build/$$t && \
		native/build/$$t || exit 1; \
	done
	@gcc -O2 -Wall -Wextra -Werror native/bench/floorfs.c -o native/build/floorfs \
		$$(pkg-config --cflags --libs fuse3) -lpthread  # make bench's FUSE floor: kept compiling
	@gcc -O2 -Wall -Wextra -Werror native/bench/loadfloor.c -o native/build/loadfloor \
		-lcrypto  # a chunk load in C (docs/performance.md): kept compiling

lint: setup
	$(VENV)/bin/ruff check dwfs tests scripts
	$(VENV)/bin/ruff format --check dwfs tests scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The tests of the request path, run again on the pyfuse3 front end (the whole
# suite runs on the native one); see docs/design.md, "FUSE adapter".
FRONTEND_SUITE := $(addprefix tests/integration/,test_posix.py test_programs.py \
	test_model.py test_crash.py test_fsync_crash.py test_full_pool.py \
	test_kernel_limits.py test_mount_errors.py test_frontends.py \
	test_stats_and_metrics.py)

# The native front end built with AddressSanitizer and UBSan (any report aborts
# the daemon, so a test fails), run over the tests that drive it hardest.
SANITIZE := .sanitize
SANITIZE_SUITE := $(addprefix tests/integration/,test_posix.py test_programs.py \
	test_frontends.py test_sparse_and_copies.py test_read_cache.py test_entry_cache.py \
	test_crash.py) \
	tests/unit/fuse/test_kernel_input.py
EXT_SUFFIX = $$($(PY) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
PY_INCLUDE = $$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['include'])")

test: setup native-test lint
	$(VENV)/bin/pytest -q
	DWFS_FRONTEND=pyfuse3 $(VENV)/bin/pytest -q $(FRONTEND_SUITE)
	$(MAKE) --no-print-directory sanitize-test

sanitize-test: setup
	@rm -rf $(SANITIZE) && mkdir -p $(SANITIZE)
	@cp -r dwfs tests pyproject.toml $(SANITIZE)/
	gcc -shared -fPIC -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
		-fno-sanitize-recover=undefined -I$(PY_INCLUDE) $$(pkg-config --cflags fuse3) \
		-Inative/include native/binding/_fuse.c native/src/readcache.c native/src/entrycache.c \
		native/src/fusecheck.c \
		$$(pkg-config --libs fuse3) -lpthread \
		-o $(SANITIZE)/dwfs/_fuse$(EXT_SUFFIX)
	cd $(SANITIZE) && PYTHONPATH=$(CURDIR)/$(SANITIZE) LD_PRELOAD=$$(gcc -print-file-name=libasan.so) \
		ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
		../$(PY) -m pytest -q -p no:cacheprovider $(SANITIZE_SUITE)

bench: setup
	@$(PY) -c "import zfec, pyeclib" 2>/dev/null || $(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) scripts/bench_blockstore.py
	$(PY) scripts/bench_mount.py --warm 4
	$(PY) scripts/bench_seq.py --warm 4
	$(PY) scripts/bench_snapshots.py
	$(PY) scripts/bench_snapshot_mount.py
	$(PY) scripts/bench_scrub.py
	$(PY) scripts/bench_remote.py
	$(PY) scripts/bench_pack_rows.py

fuzz: setup
	@$(PY) -c "import atheris" 2>/dev/null || $(PY) -m pip install -q -e '.[dev,fuzz]'
	$(PY) scripts/fuzz.py $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) build native/build *.egg-info dwfs/*.so
