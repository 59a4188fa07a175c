# -*- test-case-name: tests.pz.test_docs -*-
"""
Draw the state machines from the code (C{make docs}, or
C{python docs/state-machines/draw.py [OUTPUT_DIR]}).

The pictures in C{docs/state-machines/} are generated from the very
objects the programs run, so they cannot drift from their behaviour.  Each
machine is written as Graphviz source (C{.dot}, always) and as SVG when
Graphviz's C{dot} is installed.  To draw another machine, add its picture's
name and the machine's dotted name to L{MACHINES}.
"""

import os
import re
import shutil
import subprocess
import sys

from twisted.python.reflect import namedAny

__all__ = ["MACHINES", "machines", "draw"]

#: Every machine drawn: the picture's name (C{NAME.dot}, C{NAME.svg}) and
#: the dotted name of the machine (a class L{automat.TypeMachineBuilder}
#: built, or anything with C{asDigraph()}).
MACHINES = {
    "proxy-mode": "pzp.mode.ModeMachine",
    "virgin-mode": "pzp.virgin.VirginMachine",
    "hub-mode": "pzp.hubmode.HubMachine",
    "peer-mode": "pzp.peermode.PeerMachine",
    "renewal": "pzp.renewal.RenewalMachine",
    "revocation": "pzp.revocation.RevocationMachine",
    "peer-directory": "pzp.peerdir.DirectoryMachine",
    "sync-offer": "pz.sync.transfer.OfferMachine",
}


def machines() -> dict:
    """
    The machines of L{MACHINES}, imported: picture name to machine.
    """
    return {name: namedAny(dotted) for name, dotted in MACHINES.items()}


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
    for name, machine in machines().items():
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
    """
    Draw into the folder given as the first argument (default:
    C{docs/state-machines}); print each file written.
    """
    argv = sys.argv[1:] if argv is None else argv
    for path in draw(argv[0] if argv else "docs/state-machines"):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
