"""Synth job throughput: samples/s for 2- and 3-layer runs (run by hand, not in CI).

    PYTHONPATH=platform python benchmarks/synth_throughput.py [--n 64] [--size 256]

Prints one line per configuration; copy them into benchmarks/RESULTS.md with the
machine and date.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from liwi.synth.job import SynthConfig, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    print(f"# {platform.node()} {platform.processor() or platform.machine()} {time.ctime()}")
    for layers in (2, 3):
        with tempfile.TemporaryDirectory() as out:
            config = SynthConfig(out=out, n=args.n, layers=layers, size=args.size, progress=False)
            t, cpu = time.perf_counter(), time.process_time()
            run(config)
            wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        load = os.getloadavg()[0]
        print(
            f"layers={layers} n={args.n} size={args.size}: {wall:.2f} s wall, {cpu:.2f} s CPU "
            f"({args.n / cpu:.1f} samples per CPU-second), load average {load:.1f}"
        )


if __name__ == "__main__":
    main()
