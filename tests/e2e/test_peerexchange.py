"""
End-to-end: the peer-to-peer certificate exchange between two real
devices of zones that are not friends, with both hubs stopped once the
devices are enrolled, so that no hub takes part: an invitation code, the
one-time link, a call the default policy denies and a rule permits, the
link closed, the code refused the second time, and nothing written.
"""

import hashlib
import json
import os

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.e2e.harness import Zone, pzctl, pzctlJSON, waitFor

#: Files a device may change whatever happens: its log and admin socket.
_VOLATILE = (".log", ".sock", "admin")


#: The device's sync state, which its item scans (every 2 s) rewrite
#: whatever happens; checked by content instead (L{_mentions}).
_SYNC_STATE = os.path.join("zone", "sync") + os.sep


def _files(root: str, skip=()):
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, root)
            if relative in skip or name.endswith(_VOLATILE) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                yield relative, f.read()


def _snapshot(root: str, skip=()) -> dict:
    """
    Every file under C{root} and the SHA-256 of its contents, but logs,
    sockets, the sync state and the relative paths in C{skip}.
    """
    return {relative: hashlib.sha256(data).hexdigest() for relative, data in _files(root, skip)
            if not relative.startswith(_SYNC_STATE)}


def _mentions(root: str, text: str, skip=()) -> list:
    """
    The files under C{root} (the sync state included) holding C{text}.
    """
    return [relative for relative, data in _files(root, skip) if text.encode() in data]


class PeerExchangeTests(TestCase):
    """
    C{pzctl peer-invite}, C{peer-exchange}, C{call}, C{peer-close}.
    """

    timeout = 180

    @defer.inlineCallbacks
    def test_oneTimeLinkWithoutHubs(self):
        """
        Alice's phone invites, bob's tablet exchanges: a one-time link
        between the two zones while both hubs are down.  Alice's default
        policy denies the guest; a rule naming bob's zone lets its call
        through over the link (C{via peer}).  Closed, the link is gone on
        both sides, the used code is refused C{EXCHANGE_REFUSED}, and
        neither device wrote anything of it.
        """
        alice, bob = Zone(self, user="alice"), Zone(self, user="bob")
        yield alice.startHub()
        yield bob.startHub()
        yield alice.pairDevice("phone")
        yield bob.pairDevice("tab")
        yield alice.hub.stop()
        yield bob.hub.stop()
        phoneDir, tabDir = alice.deviceDir("phone"), bob.deviceDir("tab")
        phone, tab = alice.deviceId("phone"), bob.deviceId("tab")
        policy = os.path.join("zone", "items", "policies", "policy.xml")
        before = _snapshot(phoneDir, {policy}), _snapshot(tabDir)

        status = yield alice.status("phone")
        invite = yield pzctlJSON("--pzp-dir", phoneDir, "peer-invite", "--json")
        code = invite["code"]
        self.assertTrue(code.startswith(f"pzp://127.0.0.1:{status['peer_port']}/"), code)
        self.assertLessEqual(invite["expires"], 600)

        out = yield pzctl("--pzp-dir", tabDir, "peer-exchange", code)
        self.assertEqual(out.strip(), f"linked once with {phone}")
        peers = yield pzctlJSON("--pzp-dir", tabDir, "peers", "--json")
        self.assertEqual(peers[phone], "Connected (one-time)")
        peers = yield pzctlJSON("--pzp-dir", phoneDir, "peers", "--json")
        self.assertEqual(peers[tab], "Connected (one-time)")

        out, err, status = yield pzctl("--pzp-dir", tabDir, "call", phone, "get42", "get42",
                                       check=False)
        self.assertEqual(status, 1, out)
        self.assertIn("DENIED", err)
        yield pzctl("--pzp-dir", phoneDir, "policy", "add", "--effect", "permit",
                    "--subject", bob.zoneId, "--service", "get42")
        out = yield pzctl("--pzp-dir", tabDir, "call", "--json", phone, "get42", "get42")
        self.assertEqual(json.loads(out), {"result": 42, "via": "peer"})

        out = yield pzctl("--pzp-dir", tabDir, "peer-close", phone)
        self.assertIn(phone, out)

        @defer.inlineCallbacks
        def gone():
            peers = yield pzctlJSON("--pzp-dir", phoneDir, "peers", "--json")
            return tab not in peers
        yield waitFor(gone, 10, what="the link gone on alice's phone")
        out, err, status = yield pzctl("--pzp-dir", tabDir, "call", phone, "get42", "get42",
                                       check=False)
        self.assertEqual(status, 1, out)
        self.assertIn("NOT_CONNECTED", err)
        out, err, status = yield pzctl("--pzp-dir", tabDir, "peer-exchange", code, check=False)
        self.assertEqual(status, 1, out)
        self.assertIn("EXCHANGE_REFUSED", err)
        self.assertIn("no peer-exchange code open", err)

        after = _snapshot(phoneDir, {policy}), _snapshot(tabDir)
        changed = [sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                   for old, new in zip(before, after)]
        self.assertEqual(changed, [[], []])
        self.assertEqual(_mentions(phoneDir, bob.zoneId, {policy}), [])
        self.assertEqual(_mentions(tabDir, alice.zoneId), [])
