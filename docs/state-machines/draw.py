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

__all__ = ["MACHINES", "PICTURES", "machines", "draw", "wholePicture"]

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


#: The pictures drawn from several machines at once: name to the function
#: that writes their Graphviz source from L{machines}.
PICTURES = {}


def _transitions(source: str) -> tuple:
    """
    The states of a machine's canonical Graphviz source, and its
    transitions between two different states.
    """
    states = re.findall(r"^\t(\w+) \[color=", source, re.M)
    into = {t: state for state, t in re.findall(r"^\t(\w+) -> (t\d+):tableport:w", source, re.M)}
    edges = set()
    for t, target in re.findall(r"^\t(t\d+):tableport:e -> (\w+)", source, re.M):
        if into[t] != target:
            edges.add((into[t], target))
    return states, sorted(edges)


def wholePicture(drawn: dict) -> str:
    """
    The three modes of a device in one picture: Virgin mode until it has
    zone credentials, then Hub mode (its link to the hub) and, beside it,
    one Peer machine per other device of the zone, each with the states
    and transitions the code has.
    """
    parts = [
        "digraph zone {",
        "\trankdir=LR; compound=true; fontname=Helvetica;",
        "\tnode [shape=box, style=rounded, fontname=Helvetica];",
        "\tedge [fontname=Helvetica, fontsize=10];",
    ]
    clusters = [
        ("virgin", "virgin-mode", "Virgin mode (pzp/virgin.py): enrol with a pairing code"),
        ("hub", "hub-mode", "Hub mode (pzp/hubmode.py): the mutual-TLS link to the hub"),
        ("peer", "peer-mode", "Peer mode (pzp/peermode.py): one machine per other device"),
    ]
    for prefix, name, label in clusters:
        states, edges = _transitions(drawn[name])
        parts.append(f'\tsubgraph cluster_{prefix} {{ label="{label}";')
        parts += [f'\t\t{prefix}_{state} [label="{state}"];' for state in states]
        parts += [f"\t\t{prefix}_{a} -> {prefix}_{b};" for a, b in edges]
        parts.append("\t}")
    parts += [
        '\tLeft [label="Left: revoked, zone erased", shape=box, style="rounded,dashed"];',
        '\tvirgin_Hub -> hub_NotConnected [label="credentials stored", style=bold];',
        '\thub_Connected -> peer_Connecting [label="pzpUpdate names the device\'s\\npeer '
        'endpoint and key", style=dashed];',
        '\thub_Connecting -> Left [label="the hub proves the\\nrevocation with its CRL", '
        'style=dashed];',
        '\tpeer_Connected -> hub_Connected [label="calls and messages to that device take the '
        'peer link\\nwhile Connected (also with the hub down), else the hub link", '
        'dir=back, style=dotted];',
        "}",
    ]
    return "\n".join(parts) + "\n"


PICTURES["zone-modes"] = wholePicture


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
    drawn = {name: canonicalDot(machine.asDigraph().source) for name, machine in machines().items()}
    drawn.update((name, picture(drawn)) for name, picture in PICTURES.items())
    for name, source in drawn.items():
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
