"""Coverage-guided fuzzing of every parser of device bytes (`make fuzz`).

Runs each target of tests/fuzz/targets.py under atheris (libFuzzer) for a
bounded time, in a process of its own, starting from the target's valid seed.
A target may refuse input only with our integrity or format errors: anything
else is a crash, which libFuzzer saves as crash-* in the target's directory
under .fuzz/ and this script reports with a non-zero exit.

    scripts/fuzz.py [SECONDS_PER_TARGET] [TARGET...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".fuzz"


def run_one(name: str, seconds: int) -> bool:
    import atheris

    with atheris.instrument_imports(include=["dwfs"]):
        from tests.fuzz.targets import TARGETS
    target = TARGETS[name]
    corpus = WORK / name
    atheris.Setup(
        [
            sys.argv[0],
            str(corpus),
            f"-max_total_time={seconds}",
            "-rss_limit_mb=4096",
            f"-artifact_prefix={corpus}/",
            "-timeout=20",
        ],
        target,
    )
    atheris.Fuzz()
    return True


def main() -> int:
    sys.path.insert(0, str(ROOT))
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        run_one(sys.argv[2], int(sys.argv[3]))
        return 0
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    from tests.fuzz.targets import SEEDS, TARGETS

    names = sys.argv[2:] or sorted(TARGETS)
    failed = []
    for name in names:
        corpus = WORK / name
        corpus.mkdir(parents=True, exist_ok=True)
        (corpus / "seed").write_bytes(SEEDS[name])
        print(f"fuzzing {name} for {seconds} s", flush=True)
        result = subprocess.run(
            [sys.executable, __file__, "--one", name, str(seconds)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        tail = [line for line in result.stderr.splitlines() if "DONE" in line][-1:]
        print(f"  {name}: exit {result.returncode} {' '.join(tail)}", flush=True)
        if result.returncode:
            failed.append(name)
            print(result.stderr[-4000:], file=sys.stderr)
    if failed:
        print(f"fuzzing found crashes in: {', '.join(failed)} (see {WORK})", file=sys.stderr)
        return 1
    print(f"fuzzing: {len(names)} targets, no crash")
    return 0


if __name__ == "__main__":
    sys.exit(main())
