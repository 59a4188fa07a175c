# -*- test-case-name: tests.pz.test_cli,tests.e2e.test_spine -*-
"""
C{pzctl wait}: until a hub answers (C{--hub-dir}), or a device reaches a
mode and state (C{--pzp-dir}).

It drives only the admin socket both processes serve (L{pz.admin}) and the
exit record a proxy that gave up leaves (L{pz.process}), so it lives in the
core beside them.
"""

import json
import time

from pz.cli.verb import Verb, needs
from pz.errors import ZoneError

__all__ = ["wait"]


def _waitFor(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except ZoneError as e:
            if e.code not in ("NOT_RUNNING", "TIMEOUT"):
                raise
        if time.monotonic() >= deadline:
            raise ZoneError("TIMEOUT", f"{what} not reached within {timeout:g}s")
        time.sleep(0.1)


def _wait(args) -> None:
    from pz.admin import adminCall

    if args.hub_dir:
        _waitFor(lambda: adminCall(args.hub_dir, "ping", timeout=2), args.timeout,
                 "a running hub")
        return
    from pz.process import readExitRecord

    pzpDir = needs(args, "pzp_dir", "--pzp-dir or --hub-dir")
    state = args.state
    last = {}

    def reached():
        try:
            status = adminCall(pzpDir, "status", timeout=2)
        except ZoneError as e:
            # A proxy that gave up left its reason: no point waiting on.
            stopped = readExitRecord(pzpDir) if e.code == "NOT_RUNNING" else None
            if stopped is not None:
                raise ZoneError(stopped.code, f"the proxy stopped: {stopped.message}")
            raise
        last["error"] = status.get("error")
        return status if status["state"] == state and status["mode"] == args.mode else None

    try:
        status = _waitFor(reached, args.timeout, f"{args.mode}/{state}")
    except ZoneError as e:
        if e.code == "TIMEOUT" and last.get("error"):
            error = last["error"]
            raise ZoneError("TIMEOUT", f"{e.message}; the device's last error: "
                                       f"{error['code']}: {error['message']}")
        raise
    print(json.dumps(status))


def _waitArguments(parser, parents) -> None:
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="how long to wait (default 30)")
    parser.add_argument("--mode", default="Hub", choices=["Virgin", "Hub"],
                        help="the device mode to wait for (default Hub)")
    parser.add_argument("--state", default="Connected",
                        choices=["NotConnected", "Connecting", "Connected", "Disconnecting"],
                        help="the device state to wait for (default Connected)")


wait = Verb(
    "wait", "wait until the hub runs, or the device reaches a state",
    "Wait until the hub of --hub-dir answers, or until the device of --pzp-dir "
    "reaches --mode/--state (then print its status as JSON); fail with TIMEOUT "
    "after --timeout seconds.", _wait, _waitArguments,
)
