# -*- test-case-name: tests.pz.test_drawmachines -*-
"""
Draw the proxy's state machines from the code (C{make docs}).

The pictures in C{docs/state-machines/} are generated from the very
objects the proxy runs, so they cannot drift from its behaviour.  Each
machine is written as Graphviz source (C{.dot}, always) and as SVG when
Graphviz's C{dot} is installed.
"""

import os
import re
import shutil
import subprocess
import sys

from pzp.hubmode import HubMachine
from pzp.mode import ModeMachine
from pzp.peerdir import DirectoryMachine
from pzp.renewal import RenewalMachine
from pzp.revocation import RevocationMachine
from pzp.virgin import VirginMachine

__all__ = ["MACHINES", "draw"]

MACHINES = {
    "proxy-mode": ModeMachine,
    "virgin-mode": VirginMachine,
    "hub-mode": HubMachine,
    "renewal": RenewalMachine,
    "revocation": RevocationMachine,
    "peer-directory": DirectoryMachine,
}


def canonicalDot(source: str) -> str:
    """
    Automat names transition boxes C{t0}, C{t1}, ... in an order that
    changes between runs; renumber them by what they say and sort, so the
    same machine always gives the same file.
    """
    head, states, labels, sources, targets = [], [], {}, {}, {}
    for line in source.splitlines():
        if m := re.match(r"\t(t\d+) \[label=", line):
            labels[m.group(1)] = line
        elif m := re.match(r"\t(\w+) -> (t\d+):tableport:w", line):
            sources[m.group(2)] = m.group(1)
        elif m := re.match(r"\t(t\d+):tableport:e -> (\w+)", line):
            targets[m.group(1)] = m.group(2)
        elif re.match(r"\t\w+ \[color=", line):
            states.append(line)
        elif line != "}":
            head.append(line)
    key = lambda t: (sources[t], labels[t].split(" ", 1)[1], targets[t])
    body = []
    for number, old in enumerate(sorted(labels, key=key)):
        new = f"t{number}"
        body += [
            labels[old].replace(f"\t{old} ", f"\t{new} ", 1),
            f"\t{sources[old]} -> {new}:tableport:w [arrowhead=none]",
            f"\t{new}:tableport:e -> {targets[old]}",
        ]
    return "\n".join(head + sorted(states) + body + ["}"]) + "\n"


def draw(outputDir: str) -> list:
    """
    Write every machine's diagram into C{outputDir}; return the paths.
    """
    os.makedirs(outputDir, exist_ok=True)
    written = []
    for name, machine in MACHINES.items():
        source = canonicalDot(machine.asDigraph().source)
        dot = os.path.join(outputDir, name + ".dot")
        with open(dot, "w", encoding="utf-8") as f:
            f.write(source)
        written.append(dot)
        if shutil.which("dot"):
            svg = os.path.join(outputDir, name + ".svg")
            subprocess.run(["dot", "-Tsvg", "-o", svg, dot], check=True)
            written.append(svg)
    return written


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for path in draw(argv[0] if argv else "docs/state-machines"):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
