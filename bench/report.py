"""
The printed report's helpers, shared by every part of C{make bench}: figures
formatted, ratios, aligned tables, and the report printed and kept in
C{bench/out/}.
"""

import json
import os
import sys
import time

from bench.processes import OUT


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
