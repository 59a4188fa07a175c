"""
L{pz.sync.zoneitems}: the names of the one-way items, and opening a side's
items so that a vanished folder is never refilled.
"""

import os
import shutil

from twisted.trial.unittest import SynchronousTestCase

from pz.sync.zoneitems import openItems, trustedDevicePath, trustedHubPath

ITEMS = {"preferences.json": b'{"slave": "no"}\n', "crl.pem": b"-----BEGIN X509 CRL-----\n"}


class OpenItemsTests(SynchronousTestCase):
    def setUp(self):
        self.zone = self.mktemp()

    def open(self):
        tree, state, fresh = openItems(self.zone, lambda: ITEMS)
        self.addCleanup(state.close)
        return tree, state, fresh

    def test_firstStart(self):
        """
        The first start writes the initial items and says the state is
        fresh; the next start is not fresh and rewrites nothing.
        """
        tree, state, fresh = self.open()
        self.assertTrue(fresh)
        self.assertEqual(tree.read("preferences.json"), ITEMS["preferences.json"])
        state.close()
        tree.write("preferences.json", b'{"slave": "yes"}\n')
        tree, _, fresh = self.open()
        self.assertFalse(fresh)
        self.assertEqual(tree.read("preferences.json"), b'{"slave": "yes"}\n')

    def test_vanishedFolderNotRefilled(self):
        """
        An items folder gone after the first start (an unmounted disk)
        stays gone: refilled with the initial items, it would replace the
        zone's everywhere.
        """
        tree, state, _ = self.open()
        state.close()
        shutil.rmtree(tree.root)
        tree, _, _ = self.open()
        self.assertFalse(os.path.lexists(tree.root))

    def test_itemsBeforeState(self):
        """
        Items written before any sync state (enrolment writes them) are
        kept as they are.
        """
        os.makedirs(os.path.join(self.zone, "items"))
        with open(os.path.join(self.zone, "items", "preferences.json"), "wb") as f:
            f.write(b"{}\n")
        tree, _, fresh = self.open()
        self.assertTrue(fresh)
        self.assertEqual(tree.read("preferences.json"), b"{}\n")
        self.assertIsNone(tree.read("crl.pem"))


class NamesTests(SynchronousTestCase):
    def test_paths(self):
        """
        A device's certificate is named after its name in the zone, a
        zone's CA after the zone id, anything unsafe in a file name made safe.
        """
        self.assertEqual(trustedDevicePath("anna@127.0.0.1/phone"),
                         "certificates/trusted-pzp/phone.pem")
        self.assertEqual(trustedHubPath("anna@[::1]"), "certificates/trusted-pzh/anna@___1_.pem")
