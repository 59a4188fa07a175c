# -*- test-case-name: tests.e2e.test_spine -*-
"""
C{pzctl}: the admin command line that people and scripts use, and the
dispatcher of its verbs.

C{--hub-dir DIR} acts on a hub, C{--pzp-dir DIR} on a device.  What the
hub's store alone can answer (pairing codes, the list of devices) works
whether the hub runs or not; what needs the live process (who is connected,
sending a message, a device's state) goes through its admin socket.
Output is for people unless C{--json} is given.  The global options
(C{--hub-dir}, C{--pzp-dir}, C{--json}) go before or after the command.
Every error, a wrong command line included, prints one line
C{pzctl: CODE: sentence} on stderr and exits with status 1.

Each verb lives beside what it drives (L{pz.cli.verb}); this module finds
them in the C{pzctl.verbs} entry-point group, so the core imports neither
the hub's nor the device's modules.
"""

import argparse
import os
import sys
from importlib.metadata import entry_points

from pz.cli.verb import VERB_GROUP, Verb
from pz.errors import ZoneError

__all__ = ["main", "loadVerbs", "addVerb"]


class _Parser(argparse.ArgumentParser):
    """
    An argument parser whose errors are one C{pzctl: BAD_REQUEST: ...}
    line and exit status 1, as the README promises, instead of argparse's
    usage block and status 2.  The sub-command parsers are of this class
    too (argparse makes them with the parent's class).
    """

    def error(self, message: str):
        raise ZoneError("BAD_REQUEST", f"{message} (see {self.prog} --help)")


#: The file that marks a hub's data directory (C{ZONE_FILE} of C{pzh.zone}),
#: named here so that the dispatcher need not import the hub's modules.
_HUB_MARKER = "zone.json"

#: The folders that mark a device's data directory: its zone (C{pzp.zonedir})
#: and its Mesh keys (L{pz.mesh.device.MESH_DIR}), named here for the same
#: reason and so that C{pzctl --help} loads no key handling.
_DEVICE_MARKERS = ("zone", "mesh")


def _isHubDir(path: str) -> bool:
    """
    Whether C{path} holds a hub's zone (C{twistd pzh}).
    """
    return os.path.isfile(os.path.join(path, _HUB_MARKER))


def _isDeviceDir(path: str) -> bool:
    """
    Whether C{path} holds a device's zone or Mesh directory (C{twistd pzp}).
    """
    return any(os.path.isdir(os.path.join(path, marker)) for marker in _DEVICE_MARKERS)


def _checkDataDirs(args) -> None:
    """
    Refuse a hub's data directory given as C{--pzp-dir} and a device's as
    C{--hub-dir}, saying which flag it needs, before anything asks the
    process there a command it does not know.
    """
    if args.pzp_dir and _isHubDir(args.pzp_dir):
        raise ZoneError(
            "BAD_REQUEST",
            f"{args.pzp_dir} is a hub's data directory (twistd pzh); use --hub-dir {args.pzp_dir}",
        )
    if args.hub_dir and not _isHubDir(args.hub_dir) and _isDeviceDir(args.hub_dir):
        raise ZoneError(
            "BAD_REQUEST",
            f"{args.hub_dir} is a device's data directory (twistd pzp); use --pzp-dir {args.hub_dir}",
        )


def loadVerbs(group: str = VERB_GROUP) -> list:
    """
    Every verb registered in the entry-point group C{group}, in the order
    C{pzctl --help} lists them: those of L{_LISTED} first, then the others
    by name.  A verb that cannot be loaded stops C{pzctl} with one line.
    """
    verbs = {}
    for entry in entry_points(group=group):
        try:
            verb = entry.load()
        except Exception as e:
            raise ZoneError("INTERNAL", f"the pzctl verb {entry.name} ({entry.value}) "
                                        f"cannot be loaded: {e}")
        if not isinstance(verb, Verb) or verb.name != entry.name:
            raise ZoneError("INTERNAL", f"the pzctl verb {entry.name} ({entry.value}) "
                                        "is not a pz.cli.verb.Verb of that name")
        verbs[entry.name] = verb
    rank = {name: i for i, name in enumerate(_LISTED)}
    return sorted(verbs.values(), key=lambda v: (rank.get(v.name, len(rank)), v.name))


#: The order of C{pzctl --help}'s list: hub verbs, then C{wait}, then device
#: verbs.  A verb not named here is listed after these.
_LISTED = ("pair", "codes", "cancel-code", "devices", "revoke", "zone", "admin-link",
           "admin-logout", "invite-zone", "accept-zone", "zones", "untrust-zone", "wait",
           "status", "send", "inbox", "sync", "conflicts", "services", "call", "peers", "peer-invite",
           "peer-exchange", "peer-close", "policy",
           "prompts", "answer", "mesh")


def addVerb(subparsers, verb: Verb, parents: list) -> argparse.ArgumentParser:
    """
    Add C{verb}'s parser to C{subparsers}, taking the options of C{parents}
    too (the global options, so they may follow the verb).
    """
    parser = subparsers.add_parser(verb.name, help=verb.help, description=verb.description,
                                   parents=parents)
    verb.configure(parser, parents)
    if verb.run is not None:
        parser.set_defaults(func=verb.run)
    return parser


def _globalOptions(default) -> argparse.ArgumentParser:
    """
    The options every command takes, before or after its name: with
    C{default} on the top-level parser, and with L{argparse.SUPPRESS} on
    each sub-command's, so that an option given before the command is not
    reset by the sub-command's default.
    """
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--hub-dir", metavar="DIR", default=default(None),
                   help="data directory of a hub (twistd pzh)")
    p.add_argument("--pzp-dir", metavar="DIR", default=default(None),
                   help="data directory of a device (twistd pzp)")
    p.add_argument("--json", action="store_true", default=default(False),
                   help="print JSON instead of text")
    return p


def _parser(verbs=None) -> argparse.ArgumentParser:
    """
    C{pzctl}'s parser, with C{verbs} (by default, those L{loadVerbs} finds).
    """
    top = _globalOptions(lambda value: value)
    common = _globalOptions(lambda value: argparse.SUPPRESS)
    p = _Parser(
        prog="pzctl", parents=[top],
        description="Administer a personal zone: a hub (--hub-dir) or a device (--pzp-dir).",
        epilog="Errors print one line, 'pzctl: CODE: sentence', on stderr and exit with status 1.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for verb in loadVerbs() if verbs is None else verbs:
        addVerb(sub, verb, [common])
    return p


def main(argv=None) -> int:
    """
    Run C{pzctl}; returns the exit status.
    """
    try:
        args = _parser().parse_args(argv)
        _checkDataDirs(args)
        args.func(args)
    except ZoneError as e:
        print(f"pzctl: {e.code}: {e.message}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"pzctl: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
