"""
Tests for L{pzp.preferences}: the preferences a device acts on, read
forgivingly from its synced items.
"""

import os

from twisted.trial.unittest import SynchronousTestCase

from pz.sync.items import ItemTree
from pzp.preferences import DEFAULT_PEER_PORT, peerConnection, peerPort, readPreferences


class PreferencesTests(SynchronousTestCase):
    def tree(self, content=None) -> ItemTree:
        tree = ItemTree(self.mktemp())
        tree.create({})
        if content is not None:
            with open(os.path.join(tree.root, "preferences.json"), "wb") as f:
                f.write(content)
        return tree

    def test_defaults(self):
        """
        The specification's defaults: peer server on 8040, peer connection
        on.
        """
        self.assertEqual(DEFAULT_PEER_PORT, 8040)
        prefs = readPreferences(self.tree(None))
        self.assertEqual((peerPort(prefs), peerConnection(prefs)), (8040, True))

    def test_read(self):
        prefs = readPreferences(self.tree(
            b'{"ports": {"pzp_tlsServer": 0}, "peer_connection": "no"}'))
        self.assertEqual((peerPort(prefs), peerConnection(prefs)), (0, False))

    def test_damaged(self):
        """
        A damaged file, or values of the wrong kind, give the defaults.
        """
        for content in (b"{nope", b"[1]", b"\xff\xfe", b'{"ports": 3}',
                        b'{"ports": {"pzp_tlsServer": "8040"}}',
                        b'{"ports": {"pzp_tlsServer": 70000}}',
                        b'{"ports": {"pzp_tlsServer": true}}'):
            prefs = readPreferences(self.tree(content))
            self.assertEqual(peerPort(prefs), 8040, content)

    def test_symlinkRefused(self):
        """
        A preferences file that is a link is not followed.
        """
        tree = self.tree(None)
        target = self.mktemp()
        with open(target, "w") as f:
            f.write('{"peer_connection": "no"}')
        os.symlink(target, os.path.join(tree.root, "preferences.json"))
        self.assertTrue(peerConnection(readPreferences(tree)))
