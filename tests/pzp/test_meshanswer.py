"""
Tests for L{pzp.meshanswer}: answering a pending Mesh connection request
on the administration device, the code C{pzctl mesh approve|refuse} and
the proxy's C{--mesh-approvals} share.
"""

import os

from twisted.internet.defer import ensureDeferred
from twisted.trial.unittest import SynchronousTestCase

from pz.errors import ZoneError
from pz.mesh.device import MeshDevice
from pz.mesh.signing import unverifiedPayload
from pzp.meshanswer import answerRequest
from tests.pzp._mesh import MeshAdmin


class AnswerRequestTests(SynchronousTestCase):
    """
    L{answerRequest} against a portal in memory.
    """

    def setUp(self):
        self.admin = MeshAdmin(self)

    def answer(self, wanted: str, answer: str, device=None):
        device = device if device is not None else self.admin.device
        return self.admin.resolve(ensureDeferred(answerRequest(
            device, lambda: self.admin.client, wanted, answer, now=self.admin.now)))

    def test_approve(self):
        """
        Approving a request by a prefix of its UDF signs the acceptance,
        completes it at the portal and publishes (and keeps) the personal
        profile with the device added.
        """
        tablet = self.admin.ask("tablet")
        data, text = self.successResultOf(self.answer(tablet.udf[:8].lower(), "Accepted"))
        self.assertEqual(data, {"account": "alice", "device": tablet.udf, "result": "Accepted",
                                "name": "tablet"})
        self.assertIn(f"approved device {tablet.udf} (tablet) for account alice", text)
        self.assertEqual(self.admin.pending(), [])
        held = unverifiedPayload(self.admin.device.personal())
        self.assertIn(tablet.udf, [d.Identifier for d in held.Devices])
        result = self.admin.portal.store.result("alice", tablet.udf)
        self.assertIsNotNone(result)

    def test_refuse(self):
        """
        Refusing completes the request as C{Refused}; the profile keeps
        its devices.
        """
        tablet = self.admin.ask("tablet")
        before = self.admin.device.personal()
        data, text = self.successResultOf(self.answer(tablet.udf, "Refused"))
        self.assertEqual(data["result"], "Refused")
        self.assertTrue(text.startswith("refused device"))
        self.assertEqual(self.admin.pending(), [])
        self.assertEqual(self.admin.device.personal(), before)

    def test_unknownRequest(self):
        """
        A UDF no request has is C{UNKNOWN_DESTINATION}, and so is a prefix
        too short to name one (shorter than five characters); both leave
        the requests pending.
        """
        first = self.admin.ask("tablet")
        error = self.failureResultOf(self.answer("MAAAA-BBBBB", "Accepted"), ZoneError).value
        self.assertEqual(error.code, "UNKNOWN_DESTINATION")
        self.assertIn("account alice", error.message)
        error = self.failureResultOf(self.answer(first.udf[:4], "Accepted"), ZoneError).value
        self.assertEqual(error.code, "UNKNOWN_DESTINATION")
        self.assertEqual(self.admin.pending(), [first.udf])

    def test_notAdministration(self):
        """
        A device holding no administration key is C{NOT_AUTHORISED}, one of
        no account C{BAD_REQUEST}, before the portal is asked anything.
        """
        tablet = self.admin.ask("tablet")
        stranger = MeshDevice(self.mktemp())
        error = self.failureResultOf(self.answer(tablet.udf, "Accepted", stranger),
                                     ZoneError).value
        self.assertEqual(error.code, "BAD_REQUEST")
        os.unlink(self.admin.device.file("master.json"))
        error = self.failureResultOf(self.answer(tablet.udf, "Accepted"), ZoneError).value
        self.assertEqual(error.code, "NOT_AUTHORISED")
        self.assertIn("account alice", error.message)
        self.assertEqual(self.admin.pending(), [tablet.udf])

    def test_badAnswer(self):
        """
        An answer that is neither C{Accepted} nor C{Refused} is
        C{BAD_REQUEST}.
        """
        tablet = self.admin.ask("tablet")
        error = self.failureResultOf(self.answer(tablet.udf, "Maybe"), ZoneError).value
        self.assertEqual(error.code, "BAD_REQUEST")
        self.assertEqual(self.admin.pending(), [tablet.udf])
