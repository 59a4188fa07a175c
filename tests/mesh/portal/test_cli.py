"""
Tests for L{pzp.meshcommands}: the C{pzctl mesh} verbs are registered with their
arguments, and failures become pzctl's error codes. (The verbs at work, against
real portals, are in C{tests.e2e.test_mesh}.)
"""

import argparse

from twisted.internet.error import ConnectionRefusedError
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pz.cli.main import addVerb
from pz.errors import ZoneError
from pz.mesh.client import MeshPortalError
from pz.mesh.errors import MeshFormatError, MeshSignatureError
from pzp.meshcommands import VERBS, _asZoneError, mesh


def _parser():
    everywhere = argparse.ArgumentParser(add_help=False)
    everywhere.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="pzctl")
    parser.add_argument("--pzp-dir")
    parser.add_argument("--json", action="store_true")
    addVerb(parser.add_subparsers(dest="command", required=True), mesh, [everywhere])
    return parser


class ParserTests(SynchronousTestCase):
    """
    The C{mesh} verb registers its sub-verbs.
    """

    def test_verbs(self):
        """
        Every verb of the issue is there, each with its handler.
        """
        self.assertEqual([v.name for v in VERBS],
                         ["create", "publish", "get", "connect", "pending", "approve", "refuse", "status"])
        parser = _parser()
        for argv, verb in ((["mesh", "create", "alice"], "create"), (["mesh", "publish"], "publish"),
                           (["mesh", "get", "MID"], "get"), (["mesh", "connect", "alice"], "connect"),
                           (["mesh", "pending"], "pending"), (["mesh", "approve", "MX"], "approve"),
                           (["mesh", "refuse", "MX"], "refuse"), (["mesh", "status"], "status")):
            args = parser.parse_args(["--pzp-dir", "d", *argv, "--portal", "http://p/", "--json"])
            self.assertEqual(args.verb, verb)
            self.assertEqual(args.func.__self__.name, verb)
            self.assertTrue(args.json)
            self.assertEqual(args.portal, "http://p/")

    def test_getOptions(self):
        """
        get takes an identifier or search options.
        """
        args = _parser().parse_args(["mesh", "get", "--account", "alice", "--kv", "Type=Account",
                                     "--max-entries", "2", "--full"])
        self.assertEqual((args.identifier, args.account, args.kv, args.max_entries, args.full),
                         (None, "alice", ["Type=Account"], 2, True))

    def test_connectOptions(self):
        """
        connect takes a name, and how to wait.
        """
        args = _parser().parse_args(["mesh", "connect", "alice", "--name", "tablet", "--no-wait",
                                     "--interval", "0.2", "--wait", "9"])
        self.assertEqual((args.name, args.no_wait, args.interval, args.wait), ("tablet", True, 0.2, 9.0))


class ErrorTests(SynchronousTestCase):
    """
    What pzctl says when something fails.
    """

    def code(self, error):
        return _asZoneError(Failure(error), "http://p/").code

    def test_portalStatuses(self):
        """
        The portal's codes map to pzctl's; the message names the status.
        """
        self.assertEqual(self.code(MeshPortalError(409, "x")), "NAME_TAKEN")
        self.assertEqual(self.code(MeshPortalError(404, "x")), "UNKNOWN_DESTINATION")
        self.assertEqual(self.code(MeshPortalError(401, "x")), "NOT_AUTHORISED")
        self.assertEqual(self.code(MeshPortalError(400, "x")), "BAD_REQUEST")
        self.assertEqual(self.code(MeshPortalError(503, "x")), "INTERNAL")
        error = _asZoneError(Failure(MeshPortalError(409, "the account alice already exists")), None)
        self.assertEqual(error.message, "the portal answered 409 AlreadyExists: the account alice already exists")

    def test_local(self):
        """
        Local failures: a bad signature, a bad answer, no portal.
        """
        self.assertEqual(self.code(MeshSignatureError("x")), "NOT_AUTHORISED")
        self.assertEqual(self.code(MeshFormatError("x")), "BAD_REQUEST")
        self.assertEqual(self.code(ConnectionRefusedError()), "NOT_RUNNING")
        self.assertEqual(self.code(ZoneError("TIMEOUT")), "TIMEOUT")
        self.assertEqual(self.code(KeyError("x")), "INTERNAL")

    def test_untrustedPortal(self):
        """
        An https portal whose certificate this machine does not trust is
        C{CERT_UNTRUSTED} in one sentence that says to pass C{--ca}, not a
        repr of Twisted's wrapped failures; with C{--ca} given, it names
        that CA instead; a certificate for another host says so.
        """
        from OpenSSL import SSL
        from service_identity import VerificationError
        from twisted.web.client import RequestTransmissionFailed, ResponseNeverReceived

        verifyFailed = SSL.Error([("SSL routines", "", "certificate verify failed")])
        for wrapper in (RequestTransmissionFailed, ResponseNeverReceived):
            error = _asZoneError(Failure(wrapper([Failure(verifyFailed)])), "https://p/")
            self.assertEqual(error.code, "CERT_UNTRUSTED")
            self.assertEqual(
                error.message,
                "the portal at https://p/ presented a certificate this machine does not trust; "
                "pass --ca FILE, the CA that signed it (for a hub's portal: --ca HUB_DIR/ca.pem)",
            )
        error = _asZoneError(Failure(RequestTransmissionFailed([Failure(verifyFailed)])),
                             "https://p/", "/etc/ca.pem")
        self.assertEqual(error.message, "the portal at https://p/ presented a certificate "
                                        "that the CA in /etc/ca.pem did not sign")
        wrongHost = VerificationError(errors=["DNS mismatch"])
        error = _asZoneError(Failure(ResponseNeverReceived([Failure(wrongHost)])), "https://p/")
        self.assertEqual(error.code, "CERT_UNTRUSTED")
        self.assertIn("is not for its host", error.message)
        handshake = SSL.Error([("SSL routines", "", "sslv3 alert handshake failure")])
        error = _asZoneError(Failure(RequestTransmissionFailed([Failure(handshake)])), "https://p/")
        self.assertEqual(error.message, "no TLS connection with the portal at https://p/: "
                                        "sslv3 alert handshake failure")
