"""Command-line start-up: wall time of ``energizer-hf --help`` and friends, and of the
whole-pool fingerprint.

    OMP_NUM_THREADS=1 python benchmarks/cli_startup.py [--repeat 5] [--rows 1000000]

Each command runs in a fresh process (``python -m energizer_hf ...``) ``--repeat`` times;
the median and the best wall times are printed with the machine's load average, since a
busy machine slows start-up. The target for ``--help`` is under 2 s. The fingerprint part
times :func:`energizer_hf.utils.dataset_fingerprint` on a generated pool of ``--rows``
short texts (the run's resume identity hashes the whole pool).

A benchmark, not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "--help": ["--help"],
    "run --help": ["run", "--help"],
    "strategies": ["strategies"],
    "bad integer (argument error)": ["run", "--query-size", "ten"],
    "import torch (for scale)": None,
}


def _time(argv: list[str] | None, repeat: int) -> list[float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "energizer_hf", *argv] if argv is not None else [
        sys.executable, "-c", "import torch"]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, cwd=ROOT, check=False)
        times.append(time.perf_counter() - t)
    return times


def _fingerprint(rows: int) -> tuple[float, float]:
    import datasets
    import numpy as np

    from energizer_hf.utils import dataset_fingerprint

    rng = np.random.default_rng(0)
    words = np.array(["market", "team", "price", "score", "vote", "goal", "bank", "film", "song", "law"])
    texts = [" ".join(words[rng.integers(0, len(words), 12)]) for _ in range(rows)]
    ds = datasets.Dataset.from_dict({"text": texts, "label": rng.integers(0, 4, rows)})
    t = time.perf_counter()
    dataset_fingerprint(ds)
    return time.perf_counter() - t, ds.data.nbytes / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000, help="pool rows for the fingerprint (0: skip)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")
    print("| command | median wall (s) | best (s) | runs |\n|---|---|---|---|")
    for name, argv in COMMANDS.items():
        times = _time(argv, args.repeat)
        print(f"| `{name}` | {statistics.median(times):.2f} | {min(times):.2f} | {len(times)} |")
    if args.rows:
        seconds, mb = _fingerprint(args.rows)
        print(f"\nwhole-pool fingerprint: {args.rows:,} rows ({mb:.0f} MB of Arrow data) in {seconds:.2f} s")
    load = os.getloadavg()
    print(f"load average after: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}")


if __name__ == "__main__":
    main()
