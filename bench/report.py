"""
The printed report's helpers, shared by every part of C{make bench}: figures
formatted, ratios, aligned tables, and the report printed and kept in
C{bench/out/}.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from bench.processes import OUT, TOP, stopAll


def ratio(value, base):
    if value is None or not base:
        return None
    return value / base


def fmt(value, spec="{:.0f}", empty="-"):
    return empty if value is None else spec.format(value)


def table(headers, rows, align=None) -> list:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    align = align or ["<"] + [">"] * (len(headers) - 1)
    line = lambda cells: "  ".join(f"{str(c):{a}{w}}" for c, a, w in zip(cells, align, widths))
    return [line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def publish(name: str, runDir: str, lines: list, began: float, figures: dict) -> None:
    """
    Print the report C{lines} and keep it as C{bench/out/NAME.txt}, with the
    raw C{figures} in C{bench/out/NAME.json}.
    """
    lines = lines + ["", f"(whole run: {time.monotonic() - began:.0f} s; raw figures in "
                         f"bench/out/{name}.json, logs in bench/out/{runDir}/)"]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(OUT, f"{name}.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, f"{name}.json"), "w") as f:
        json.dump(figures, f, indent=1, default=str)


def codeLine() -> str:
    """
    The commit measured and the time, for a run of one part alone (the
    full run prints the machine facts).
    """
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=TOP,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pz", "pzh", "pzp", "bench"],
                               cwd=TOP, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", ""
    return (f"code    : {head or '?'}{' with uncommitted changes' if dirty else ''}, "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {os.cpu_count()} cores")


def runAlone(name: str, measure, report, argv=None) -> int:
    """
    C{python -m bench.NAME}: one part only, with C{python -m bench}'s
    options: C{measure(args, runDir)} in a fresh C{bench/out/run-NAME/},
    every process it started stopped, C{report(result)} printed and kept
    as C{bench/out/NAME.txt}.
    """
    from bench.options import parseArgs

    args = parseArgs(sys.argv[1:] if argv is None else argv)
    began = time.monotonic()
    run = os.path.join(OUT, f"run-{name}")
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(run)
    info = [codeLine()]
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    try:
        result = measure(args, run)
    finally:
        stopAll()
    publish(name, f"run-{name}", info + report(result), began, {"facts": info, name: result})
    return 0
