"""
Tests for L{pzh.zonelink}: the PZH-PZH link between friend zones, who may
open one, and the calls routed over it.
"""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from pz import tls
from pz.policy import Decision, Resource, Subject
from pz.policy.edit import addRule
from pz.policy.item import POLICY
from pz.testing import HOST, MemoryHub
from tests.pzh.test_friends import _settings, makePair


def _call(to: str, msgId: str = "e1", method: str = "get42.get42", **extra) -> dict:
    envelope = {"type": "JSONRPC", "from": "", "to": to, "id": msgId,
                "payload": {"jsonrpc": "2.0", "id": "c-" + msgId, "method": method,
                            "params": []}}
    envelope.update(extra)
    return envelope


class _FakePDP:
    """
    Records the requests it is asked and answers C{effect}.
    """

    def __init__(self, effect: str) -> None:
        self.effect = effect
        self.asked = []

    def decide(self, request):
        self.asked.append(request)
        return Decision(self.effect, None, "r1", "test")


class ZoneLinkTests(SynchronousTestCase):
    """
    Alice and bob are friends; bob's hub dials alice's; each has a device.
    """

    def setUp(self):
        self.pair = makePair(self)
        self.pair.befriend()
        self.alice, self.bob = self.pair.alice, self.pair.bob
        self.phone = self.device(self.alice, "phone")
        self.tab = self.device(self.bob, "tab")

    def device(self, hub, name):
        key, cert = hub.enrolDevice(name)
        link = hub.connectDevice(key, cert)
        self.pair.flush()
        link.client.take()
        return link.client

    def dial(self):
        """
        Bob's hub dials alice's, as its C{ClientService} does.
        """
        return self.pair.dial()

    def rawFriendHub(self, key=None, cert=None):
        """
        A bare client presenting bob's hub certificate (or C{cert}) to
        alice's hub: it sends what the test asks, lies included.
        """
        link = self.alice.connect(tls.pzpClientOptions(
            self.alice.zone.caCert, key or self.bob.zone.hubKey, cert or self.bob.zone.hubCert,
            HOST))
        return link

    def test_linkUp(self):
        """
        Bob's hub, presenting its hub certificate, is admitted as zone bob's
        link: both sides say C{up}.
        """
        client, link = self.dial()
        self.assertTrue(client.ready.called)
        self.assertEqual(self.successResultOf(client.ready), client)
        self.assertEqual(self.alice.hub.zoneLinks.state(self.bob.zoneId), "up")
        self.assertEqual(self.bob.hub.zoneLinks.state(self.alice.zoneId), "up")
        [row] = self.alice.hub.zoneLinks.listing()
        self.assertEqual((row["zone"], row["link"], row["dials"]), (self.bob.zoneId, "up", False))
        self.assertEqual(row["fingerprint"], self.bob.zone.caFingerprint)

    def permit(self, hub, zone: str) -> None:
        """
        Add to C{hub}'s policy a rule permitting C{zone}'s calls to get42,
        as C{pzctl --hub-dir DIR policy add} does.
        """
        tree = hub.hub.sync.tree
        data, _ = addRule(tree.read(POLICY), "permit", subject=zone, service="get42")
        tree.write(POLICY, data)

    def test_callRoutedBothWays(self):
        """
        A call from bob's device to alice's goes through both hubs; alice's
        device sees bob's device as the caller, and its answer comes back.
        """
        self.permit(self.alice, self.bob.zoneId)
        self.dial()
        self.tab.send(_call(self.alice.deviceId("phone"), resp_to=self.bob.deviceId("tab")))
        self.pair.flush()
        [call] = self.phone.take()
        self.assertEqual((call["type"], call["from"], call["to"]),
                         ("JSONRPC", self.bob.deviceId("tab"), self.alice.deviceId("phone")))
        self.assertEqual(call["payload"]["method"], "get42.get42")
        self.phone.send({"type": "JSONRPC", "from": "", "to": call["from"], "id": "a1",
                         "payload": {"jsonrpc": "2.0", "id": "c-e1", "result": 42}})
        self.pair.flush()
        [answer] = self.tab.take()
        self.assertEqual((answer["from"], answer["payload"]["result"]),
                         (self.alice.deviceId("phone"), 42))

    def test_spoofedSender(self):
        """
        A friend hub cannot send as one of alice's own devices, as itself,
        or as a third zone's device: C{NOT_AUTHORISED}, nothing delivered.
        """
        raw = self.rawFriendHub().client
        self.pair.flush()
        # Admitted, it is told what alice shares with zone bob (her CRL).
        self.assertEqual(raw.statuses(), ["zoneLinked", "zoneShared"])
        for i, sender in enumerate([self.alice.deviceId("other"), self.bob.zoneId,
                                    "carol@127.0.0.1/x"]):
            raw.send(dict(_call(self.alice.deviceId("phone"), f"s{i}"), **{"from": sender}))
        self.pair.flush()
        self.assertEqual(raw.codes(), ["NOT_AUTHORISED"] * 3)
        self.assertEqual(self.phone.take(), [])

    def test_whatMayCross(self):
        """
        Only calls to alice's devices, answered to their sender, and error
        replies cross: another zone's device, an unknown or offline one, a
        foreign C{resp_to} and a text message are refused with their codes.
        """
        raw = self.rawFriendHub().client
        self.pair.flush()
        tab = self.bob.deviceId("tab")
        self.alice.enrolDevice("laptop")
        raw.send(dict(_call("carol@127.0.0.1/x", "w1"), **{"from": tab}))
        raw.send(dict(_call(self.alice.deviceId("nobody"), "w2"), **{"from": tab}))
        raw.send(dict(_call(self.alice.deviceId("laptop"), "w3"), **{"from": tab}))
        raw.send(dict(_call(self.alice.deviceId("phone"), "w4"),
                      **{"from": tab, "resp_to": self.alice.deviceId("laptop")}))
        raw.sendProp(self.alice.deviceId("phone"), {"status": "message", "text": "hi"},
                     "w5", sender=tab)
        self.pair.flush()
        self.assertEqual(raw.codes(), ["UNKNOWN_DESTINATION", "UNKNOWN_DESTINATION",
                                       "DEVICE_OFFLINE", "NOT_AUTHORISED", "NOT_AUTHORISED"])
        # Refusals go to the sending device, for its hub to hand on.
        self.assertEqual({f["to"] for f in raw.received if "code" in f["payload"]}, {tab})
        self.assertEqual(self.phone.take(), [])

    def test_refusalReachesCaller(self):
        """
        Alice's hub's refusal of bob's device's call reaches that device,
        naming its envelope.
        """
        self.dial()
        self.tab.send(_call(self.alice.deviceId("nobody"), "n1"))
        self.pair.flush()
        [error] = self.tab.take()
        self.assertEqual((error["payload"]["code"], error["payload"]["ref"]),
                         ("UNKNOWN_DESTINATION", "n1"))

    def test_friendDeviceCannotLink(self):
        """
        A device certificate of the friend zone does not open a zone link
        (nor is it taken for one of alice's devices): C{CERT_INVALID}.
        """
        key, cert = self.bob.enrolDevice("sneaky")
        raw = self.rawFriendHub(key, cert).client
        self.pair.flush()
        self.assertEqual(raw.codes(), ["CERT_INVALID"])
        self.assertIsNotNone(raw.lost)
        self.assertEqual(self.alice.hub.zoneLinks.state(self.bob.zoneId), "waiting")

    def test_untrustedZoneCannotLink(self):
        """
        The hub of a zone alice does not trust is refused C{CERT_UNTRUSTED}.
        """
        carol = MemoryHub(self, _settings(), clock=self.alice.clock, user="carol")
        raw = self.rawFriendHub(carol.zone.hubKey, carol.zone.hubCert).client
        self.pair.flush()
        self.assertEqual(raw.codes(), ["CERT_UNTRUSTED"])
        self.assertIsNotNone(raw.lost)

    def test_unreachable(self):
        """
        With the link down, a call to the friend zone is C{ZONE_UNREACHABLE}
        at the caller's own hub; to a zone that is no friend,
        C{ZONE_UNTRUSTED}.
        """
        self.tab.send(_call(self.alice.deviceId("phone"), "u1"))
        self.tab.send(_call("carol@127.0.0.1/x", "u2"))
        self.pair.flush()
        self.assertEqual(self.tab.codes(), ["ZONE_UNREACHABLE", "ZONE_UNTRUSTED"])

    def test_onlyCallsLeave(self):
        """
        A device's text message to a friend's device is refused at its own
        hub, as is a call answered to another device.
        """
        self.dial()
        self.tab.sendProp(self.alice.deviceId("phone"), {"status": "message", "text": "hi"}, "t1")
        self.tab.send(_call(self.alice.deviceId("phone"), "t2", resp_to=self.bob.deviceId("x")))
        self.pair.flush()
        self.assertEqual(self.tab.codes(), ["NOT_AUTHORISED", "NOT_AUTHORISED"])
        self.assertEqual(self.phone.take(), [])

    def test_untrustClosesLink(self):
        """
        Alice untrusting bob closes the link at once; bob's hub hears why,
        and bob's device's next call is refused C{ZONE_UNTRUSTED} at its
        own hub; alice's device's call to bob is refused too.
        """
        client, link = self.dial()
        self.alice.hub.friends.untrust(self.bob.zoneId)
        self.pair.flush()
        self.assertTrue(link.closed)
        self.assertEqual(self.bob.hub.zoneLinks.state(self.alice.zoneId),
                         "refused (ZONE_UNTRUSTED)")
        self.tab.send(_call(self.alice.deviceId("phone"), "x1"))
        self.phone.send(_call(self.bob.deviceId("tab"), "x2"))
        self.pair.flush()
        self.assertEqual(self.tab.codes(), ["ZONE_UNTRUSTED"])
        self.assertEqual(self.phone.codes(), ["ZONE_UNTRUSTED"])
        # and bob's next dial is refused at the handshake
        again, _ = self.dial()
        self.assertEqual(self.failureResultOf(again.ready).value.code, "CERT_UNTRUSTED")

    def test_untrustOnDiallingSide(self):
        """
        Bob untrusting alice closes the link it dialled and stops dialling.
        """
        client, link = self.dial()
        self.bob.hub.friends.untrust(self.alice.zoneId)
        self.pair.flush()
        self.assertTrue(link.closed)
        self.assertEqual(self.alice.hub.zoneLinks.state(self.bob.zoneId),
                         "refused (ZONE_UNTRUSTED)")

    def test_policyAsked(self):
        """
        A call coming in from a friend zone is decided by the hub's own
        policy (action C{connect}): the default lets no other zone in
        (C{DENIED}, nothing delivered); once a rule permits bob's zone the
        call reaches the device, without a restart.
        """
        self.dial()
        self.tab.send(_call(self.alice.deviceId("phone"), "p1"))
        self.pair.flush()
        self.assertEqual(self.tab.codes(), ["DENIED"])
        self.assertEqual(self.phone.take(), [])
        self.permit(self.alice, self.bob.zoneId)
        self.tab.send(_call(self.alice.deviceId("phone"), "p2"))
        self.pair.flush()
        self.assertEqual(len(self.phone.take()), 1)

    def test_policyRequest(self):
        """
        The hub asks its decision point with the friend's zone and device,
        the called service and method, and action C{connect}.
        """
        pdp = _FakePDP("Permit")
        self.patch(self.alice.hub.zoneLinks, "_pdp", pdp)
        self.dial()
        self.tab.send(_call(self.alice.deviceId("phone"), "p1"))
        self.pair.flush()
        [request] = pdp.asked
        self.assertEqual((request.subject, request.resource, request.action),
                         (Subject(self.bob.zoneId, self.bob.deviceId("tab"), None, "friend"),
                          Resource("get42", "get42", None), "connect"))
        self.assertEqual(len(self.phone.take()), 1)


class DialTests(SynchronousTestCase):
    """
    The side that accepted the invitation dials, with a C{ClientService}.
    """

    def test_acceptingSideDials(self):
        """
        Bob (which accepted) dials alice once its zone links start; alice
        does not dial; untrusting stops the dialling.
        """
        pair = makePair(self)
        dialled = []

        class _Endpoint:
            def connect(self, factory):
                dialled.append(factory)
                return Deferred()

        from pzh.zonelink import ZoneLinks

        links = {}
        for name, hub in (("alice", pair.alice), ("bob", pair.bob)):
            links[name] = ZoneLinks(hub.zone, hub.hub.friends, hub.hub.registry, hub.store,
                                    pair.clock, connector=lambda record: _Endpoint())
            links[name].startService()
        pair.befriend()
        self.assertEqual(len(dialled), 1)
        self.assertEqual(links["bob"].state(pair.alice.zoneId), "connecting")
        self.assertEqual(links["alice"].state(pair.bob.zoneId), "waiting")
        pair.bob.hub.friends.untrust(pair.alice.zoneId)
        self.assertEqual(links["bob"].state(pair.alice.zoneId), "waiting")
        for each in links.values():
            each.stopService()
