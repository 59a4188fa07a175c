# -*- test-case-name: tests.pzp.test_exchangecommands -*-
"""
A device's C{pzctl} verbs for the peer-to-peer certificate exchange
(C{--pzp-dir DIR}): C{peer-invite}, C{peer-exchange} and C{peer-close}.

Each asks the running proxy through its admin socket: the exchange's
tickets and its link live in that process's memory only.
"""

import json

from pz.cli.verb import Verb, needs

__all__ = ["peerInvite", "peerExchange", "peerClose"]

#: How long C{pzctl peer-exchange} waits for the link.
EXCHANGE_WAIT = 60.0


def _peerInvite(args) -> None:
    from pz.admin import adminCall

    request = {"host": args.host} if args.host else {}
    answer = adminCall(needs(args, "pzp_dir", "--pzp-dir"), "peer-invite", request)
    print(json.dumps(answer) if args.json else answer["code"])


def _peerInviteArguments(parser, parents) -> None:
    parser.add_argument("--host", metavar="HOST",
                        help="the address the other device dials (default: the address "
                             "the peer server listens on)")


def _peerExchange(args) -> None:
    from pz.admin import adminCall

    answer = adminCall(needs(args, "pzp_dir", "--pzp-dir"), "peer-exchange",
                       {"code": args.code}, timeout=EXCHANGE_WAIT)
    print(json.dumps(answer) if args.json else f"linked once with {answer['device']}")


def _peerExchangeArguments(parser, parents) -> None:
    parser.add_argument("code", metavar="CODE",
                        help="the code pzctl peer-invite printed on the other device, "
                             "pzp://HOST:PORT/TOKEN#CERTSHA256")


def _peerClose(args) -> None:
    from pz.admin import adminCall
    from pz.ids import checkDeviceId

    checkDeviceId(args.device)
    answer = adminCall(needs(args, "pzp_dir", "--pzp-dir"), "peer-close", {"device": args.device})
    print(json.dumps(answer) if args.json else f"closed the one-time link with {args.device}")


def _peerCloseArguments(parser, parents) -> None:
    parser.add_argument("device", metavar="DEVICE_ID",
                        help="the device of the one-time link, ZONE/NAME (pzctl peers lists it)")


peerInvite = Verb(
    "peer-invite", "a one-time code for a device of another zone (device)",
    "Print a one-time peer-exchange code, pzp://HOST:PORT/TOKEN#CERTSHA256, for this "
    "device's peer port: a device of a zone that is not a friend links to this one once with "
    "it (pzctl peer-exchange), trusting only this device's certificate, whose SHA-256 the "
    "code carries. The code is valid 10 minutes and for one link; nothing of it is kept.",
    _peerInvite, _peerInviteArguments,
)

peerExchange = Verb(
    "peer-exchange", "link once with another zone's device by its code (device)",
    "Dial the device that printed CODE (pzctl peer-invite), accept only the certificate the "
    "code pins, present this device's own, and hand over the code's token; print that "
    "device's id once the one-time link is up. pzctl call then reaches it over that link, "
    "as far as its policy permits a guest.",
    _peerExchange, _peerExchangeArguments,
)

peerClose = Verb(
    "peer-close", "close a one-time link of a certificate exchange (device)",
    "Close the one-time link with DEVICE_ID; a new link needs a new code.",
    _peerClose, _peerCloseArguments,
)
