"""
Sum up a fuzz run: C{python -m tests.fuzz.report DIR [MINIMUM]} prints,
per target, the examples run (one per connection), the frames or requests
generated, the bytes sent, the time, the traced heap's largest rise during one connection, and what
stayed after the run, then the totals.  It exits non-zero when no target
reported or when fewer than MINIMUM frames and requests were generated.
"""

import json
import sys
from pathlib import Path

__all__ = ["summarise", "main"]

_MIB = 1024 * 1024


def summarise(figures: list) -> str:
    """
    The table for the targets' C{figures}, as written by
    L{tests.fuzz._harness.FuzzRun.finishRun}.
    """
    header = f"{'target':<40} {'examples':>9} {'inputs':>9} {'MiB sent':>9} {'seconds':>8} " \
             f"{'peak MiB':>9} {'kept MiB':>9}"
    lines = [header, "-" * len(header)]
    for f in sorted(figures, key=lambda f: f["target"]):
        lines.append(
            f"{f['target']:<40} {f['examples']:>9} {f['inputs']:>9} {f['bytes'] / _MIB:>9.1f} "
            f"{f['seconds']:>8.1f} {f['peakBytes'] / _MIB:>9.1f} {f['growthBytes'] / _MIB:>9.1f}"
        )
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<40} {sum(f['examples'] for f in figures):>9} "
        f"{sum(f['inputs'] for f in figures):>9} {sum(f['bytes'] for f in figures) / _MIB:>9.1f} "
        f"{sum(f['seconds'] for f in figures):>8.1f} "
        f"{max(f['peakBytes'] for f in figures) / _MIB:>9.1f} "
        f"{max(f['growthBytes'] for f in figures) / _MIB:>9.1f}"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    """
    Print the summary of the run reported in C{argv[0]}.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m tests.fuzz.report DIR [MINIMUM]", file=sys.stderr)
        return 2
    figures = [json.loads(p.read_text()) for p in sorted(Path(argv[0]).glob("*.json"))]
    if not figures:
        print(f"no fuzz target reported in {argv[0]}", file=sys.stderr)
        return 1
    print(summarise(figures))
    total = sum(f["inputs"] for f in figures)
    minimum = int(argv[1]) if len(argv) > 1 else 0
    if total < minimum:
        print(f"only {total} frames and requests generated; at least {minimum} were asked for",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
