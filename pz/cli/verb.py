# -*- test-case-name: tests.pz.test_cli -*-
"""
What a C{pzctl} verb is, and the small helpers verbs share.

A verb lives beside what it drives (the hub's in L{pzh.commands}, a
device's in L{pzp.commands}, the Mesh client's in L{pzp.meshcommands}) and
is registered in the C{pzctl.verbs} entry-point group of C{setup.cfg}; the
dispatcher (L{pz.cli.main}) finds it there, so the core never imports the
ends.
"""

import argparse
import json
import time
from typing import Callable, NamedTuple, Optional

from pz.errors import ZoneError

__all__ = ["Verb", "VERB_GROUP", "WallClock", "needs", "printRows"]

#: The entry-point group every C{pzctl} verb is registered in.
VERB_GROUP = "pzctl.verbs"


def _noArguments(parser: argparse.ArgumentParser, parents: list) -> None:
    """
    A verb that takes only the global options.
    """


class Verb(NamedTuple):
    """
    One C{pzctl} verb: its name, the one line C{pzctl --help} lists, the
    description its own C{--help} shows, what runs it, and how it adds its
    own arguments.  A named tuple rather than an C{attrs} class: C{pzctl}
    loads every verb at each start, and C{attrs} would double the time
    C{pzctl --help} takes to import.

    @ivar run: called with the parsed arguments; raises L{ZoneError} for
        anything that stops it.  L{None} for a verb whose sub-verbs each set
        their own (C{mesh}).
    @ivar configure: called with the verb's parser and the parsers of the
        global options (for sub-verbs, so those options may follow them too).
    """

    name: str
    help: str
    description: str
    run: Optional[Callable[[argparse.Namespace], None]]
    configure: Callable[[argparse.ArgumentParser, list], None] = _noArguments


class WallClock:
    """
    The clock verbs hand to the objects they drive: the time now.
    """

    @staticmethod
    def seconds() -> float:
        return time.time()


def needs(args: argparse.Namespace, attr: str, flag: str) -> str:
    """
    The value of the global option C{flag} (C{args.attr}); a verb that
    cannot work without it fails with C{BAD_REQUEST} naming the flag.
    """
    value = getattr(args, attr)
    if not value:
        raise ZoneError("BAD_REQUEST", f"this command needs {flag} DIR")
    return value


def printRows(args: argparse.Namespace, rows: list, empty: str,
              line: Callable[[dict], str]) -> None:
    """
    A listing verb's output: with C{--json} the rows as a JSON array;
    otherwise C{line(row)} for each, or the sentence C{empty} (saying what
    to do) when there are none.
    """
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(empty)
    else:
        for row in rows:
            print(line(row))
