"""
Tests for L{pzp.renewal}: the Renewal machine alone on a L{Clock}, against
dummy actions that record what they are asked (as magic-wormhole's
C{test_machines.py} does).  Renewal against a real hub runs in
L{tests.pzp.test_lifecycle}.
"""

from datetime import datetime, timedelta, timezone

from automat import NoTransition
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from pz import pki
from pz.errors import ZoneError
from pzp.renewal import IRenewalActions, Renewal, RenewalCore, RenewalMachine, renewalTime
from tests.pzp.machines import transitions

UNTIL_RENEWAL = 600.0
UNTIL_RETRY = 60.0


@implementer(IRenewalActions)
class RenewalActions:
    """
    Records what the Renewal machine asks; renewals stay pending in
    C{renewals} until the test fires them.
    """

    def __init__(self) -> None:
        self.renewals = []
        self.failures = []

    def untilRenewal(self):
        return UNTIL_RENEWAL

    def untilRetry(self):
        return UNTIL_RETRY

    def renew(self, link):
        d = Deferred()
        self.renewals.append((link, d))
        return d

    def renewalFailed(self, error, retry):
        self.failures.append((error, retry))


class RenewalMachineTests(SynchronousTestCase):
    """
    Tests for L{RenewalMachine}.
    """

    def setUp(self):
        self.clock = Clock()
        self.actions = RenewalActions()
        self.machine = RenewalMachine(RenewalCore(self.clock, self.actions))
        self.link = object()

    def renewing(self):
        """
        A link up and its renewal time come: the pending renewal.
        """
        self.machine.linkUp(self.link)
        self.clock.advance(UNTIL_RENEWAL)
        return self.actions.renewals[-1][1]

    def test_diagram(self):
        """
        Idle --linkUp--> Waiting --due--> Renewing, renewed back to
        Waiting, failed to Retrying --due--> Renewing; the link's loss and
        C{stop} lead back to Idle from anywhere.
        """
        expected = {
            ("Idle", "linkUp", "Waiting"),
            ("Waiting", "due", "Renewing"),
            ("Retrying", "due", "Renewing"),
            ("Renewing", "renewed", "Waiting"),
            ("Renewing", "failed", "Retrying"),
            ("Idle", "renewed", "Idle"),
            ("Idle", "failed", "Idle"),
        }
        for state in ("Idle", "Waiting", "Renewing", "Retrying"):
            expected |= {(state, "linkLost", "Idle"), (state, "stop", "Idle"),
                         (state, "state", state)}
        self.assertEqual(transitions(RenewalMachine), expected)

    def test_waitsForRenewalTime(self):
        """
        A link up sets a timer for the renewal time; nothing is renewed
        before it, and at it the renewal runs over that link.
        """
        self.machine.linkUp(self.link)
        self.assertEqual(self.machine.state(), "Waiting")
        self.clock.advance(UNTIL_RENEWAL - 1)
        self.assertEqual(self.actions.renewals, [])
        self.clock.advance(1)
        self.assertEqual([link for link, _ in self.actions.renewals], [self.link])
        self.assertEqual(self.machine.state(), "Renewing")

    def test_renewedWaitsAgain(self):
        """
        Once renewed, the next renewal is scheduled.
        """
        self.renewing().callback("cert")
        self.assertEqual(self.machine.state(), "Waiting")
        self.assertEqual([c.getTime() - self.clock.seconds()
                          for c in self.clock.getDelayedCalls()], [UNTIL_RENEWAL])

    def test_failedRetries(self):
        """
        A failed renewal is reported with the retry delay, and retried
        then over the same link.
        """
        error = ZoneError("CERT_INVALID")
        self.renewing().errback(error)
        self.assertEqual(self.machine.state(), "Retrying")
        self.assertEqual(self.actions.failures, [(error, UNTIL_RETRY)])
        self.clock.advance(UNTIL_RETRY - 1)
        self.assertEqual(len(self.actions.renewals), 1)
        self.clock.advance(1)
        self.assertEqual([link for link, _ in self.actions.renewals], [self.link, self.link])

    def test_otherFailureIsNotConnected(self):
        """
        A failure that is not a L{ZoneError} is reported as
        C{NOT_CONNECTED}.
        """
        self.renewing().errback(RuntimeError("gone"))
        [(error, _)] = self.actions.failures
        self.assertEqual(error.code, "NOT_CONNECTED")

    def test_linkLostCancels(self):
        """
        The link's loss cancels the renewal or retry timer.
        """
        self.machine.linkUp(self.link)
        self.machine.linkLost()
        self.assertEqual((self.machine.state(), self.clock.getDelayedCalls()), ("Idle", []))
        self.renewing().errback(ZoneError("TIMEOUT"))
        self.machine.linkLost()
        self.assertEqual((self.machine.state(), self.clock.getDelayedCalls()), ("Idle", []))

    def test_closingLinkFailsRenewal(self):
        """
        A closing link fails the renewal in flight, then is reported lost:
        the failure is reported and no retry stays scheduled.  The other
        order schedules nothing either.
        """
        self.renewing().errback(ZoneError("NOT_CONNECTED"))
        self.machine.linkLost()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        pending = self.renewing()
        self.machine.linkLost()
        pending.errback(ZoneError("NOT_CONNECTED"))
        self.assertEqual(self.actions.failures[-1][1], None)
        self.assertEqual((self.machine.state(), self.clock.getDelayedCalls()), ("Idle", []))

    def test_stop(self):
        """
        C{stop} cancels what is scheduled, in every state.
        """
        self.machine.stop()
        self.machine.linkUp(self.link)
        self.machine.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        pending = self.renewing()
        self.machine.stop()
        pending.callback("cert")
        self.assertEqual((self.machine.state(), self.clock.getDelayedCalls()), ("Idle", []))

    def test_normalSequences(self):
        """
        Links coming and going around renewals, refusals and retries never
        lack a transition.
        """
        for _ in range(3):
            self.renewing().errback(ZoneError("TIMEOUT"))
            self.clock.advance(UNTIL_RETRY)
            self.actions.renewals[-1][1].callback("cert")
            self.machine.linkLost()
            self.machine.linkLost()
        self.machine.stop()
        self.assertEqual((self.machine.state(), self.clock.getDelayedCalls()), ("Idle", []))

    def test_undefinedInputs(self):
        """
        A second link while one is up, or C{due} without a timer, has no
        transition.
        """
        self.assertRaises(NoTransition, self.machine.due, self.link)
        self.machine.linkUp(self.link)
        self.assertRaises(NoTransition, self.machine.linkUp, self.link)
        self.assertRaises(NoTransition, self.machine.renewed, self.link)
        self.machine.stop()

    def test_actionsAdapted(self):
        """
        The core refuses actions that do not provide L{IRenewalActions},
        and the worker refuses collaborators in the wrong places.
        """
        self.assertRaises(TypeError, RenewalCore, self.clock, object())
        self.assertRaises(TypeError, Renewal(self.clock).wire, object(), object())


class RenewalTimeTests(SynchronousTestCase):
    """
    Tests for L{renewalTime}.
    """

    def test_twoThirds(self):
        """
        Two thirds into the certificate's life, counted from its issue, not
        from its notBefore back-dated for clock skew.
        """
        now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        caKey, caCert = pki.createZoneCA("alice@127.0.0.1", now)
        key = pki.newKey()
        cert = pki.issueDeviceCertificate(caKey, caCert, pki.makeCSR(key, "phone"),
                                          "alice@127.0.0.1/phone", 90, now)
        issued = cert.not_valid_before_utc + pki.CLOCK_SKEW
        expected = issued + (cert.not_valid_after_utc - issued) * 2 / 3
        self.assertAlmostEqual(renewalTime(cert), expected.timestamp(), places=3)
        self.assertGreater(expected, now + timedelta(days=59))
