"""
Chunking and hashing throughput of synchronisation: how fast
L{pz.sync.chunkers.manifestOfFile} turns a data item into its manifest
(content-defined cut points, a SHA-256 per chunk and the whole item's
SHA-256), the work a device does for every changed user file before it
sends anything.

C{python -m bench.syncchunk} (from the project's top directory) writes a
random file (incompressible, no repeated chunks: the worst case for the
chunker's cut-point skipping), reads it once to have it in the page cache,
times several runs and prints one table row.  The target is 300 MB/s.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

from bench.report import fmt, table
from pz.sync.chunkers import manifestOfFile

TARGET = 300.0

_MB = 1024 * 1024


def _randomFile(path: str, sizeMB: int) -> None:
    with open(path, "wb") as f:
        for _ in range(sizeMB):
            f.write(os.urandom(_MB))


def measure(sizeMB: int = 64, repeat: int = 5, directory=None) -> dict:
    """
    Time L{manifestOfFile} over a random file of C{sizeMB} MiB, C{repeat}
    times after one untimed run, and give the median and best throughput
    in MB/s (MiB per second) with the chunk count, and the MiB per second
    of CPU time (both threads): on a machine shared with other work the
    wall-clock rate falls, the CPU cost does not.
    """
    with tempfile.TemporaryDirectory(prefix="syncchunk-", dir=directory) as work:
        path = os.path.join(work, "item")
        _randomFile(path, sizeMB)
        size = sizeMB * _MB
        manifest = manifestOfFile("data", path, size)
        times = []
        cpu = []
        for _ in range(repeat):
            began, beganCPU = time.perf_counter(), time.process_time()
            manifestOfFile("data", path, size)
            times.append(time.perf_counter() - began)
            cpu.append(time.process_time() - beganCPU)
    median = statistics.median(times)
    rate = sizeMB / median
    return {
        "size_mb": sizeMB,
        "runs": repeat,
        "seconds": median,
        "mb_per_s": rate,
        "best_mb_per_s": sizeMB / min(times),
        "mb_per_cpu_s": sizeMB / statistics.median(cpu),
        "chunks": len(manifest.chunks),
        "average_chunk": size / max(1, len(manifest.chunks)),
        "target_mb_per_s": TARGET,
        "pass": rate >= TARGET,
    }


def lines(figures: dict) -> list:
    """
    The table of C{figures} from L{measure}: one row.
    """
    return table(
        ["sync chunking + hashing", "MB", "chunks", "avg chunk", "MB/s (median)", "best",
         "MB/CPU-s", "target", ""],
        [["manifestOfFile (data)", figures["size_mb"], figures["chunks"],
          fmt(figures["average_chunk"]), fmt(figures["mb_per_s"]),
          fmt(figures["best_mb_per_s"]), fmt(figures["mb_per_cpu_s"]), f">= {fmt(figures['target_mb_per_s'])}",
          "pass" if figures["pass"] else "FAIL"]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.syncchunk",
                                     description="Chunking and hashing throughput of sync.")
    parser.add_argument("--size-mb", type=int, default=64, help="size of the random file, MiB")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (median)")
    args = parser.parse_args(argv)
    if args.size_mb < 1 or args.repeat < 1:
        parser.error("--size-mb and --repeat must be positive")
    sys.stdout.write("\n".join(lines(measure(args.size_mb, args.repeat))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
