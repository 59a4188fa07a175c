"""
Tests for L{pzp.peerdir}: the peer directory and its machine, alone.
"""

from twisted.trial.unittest import SynchronousTestCase

from pzp.peerdir import DirectoryMachine, PeerDirectory
from tests.pzp.machines import transitions


class PeerDirectoryTests(SynchronousTestCase):
    """
    Tests for L{PeerDirectory.update}.
    """

    def setUp(self):
        self.directory = PeerDirectory()

    def known(self):
        return sorted(self.directory.peers())

    def test_fullList(self):
        """
        A C{devices} list replaces what was known; entries without a string
        id are ignored.
        """
        self.directory.update({"devices": [{"id": "old"}]})
        self.directory.update({"devices": [{"id": "b"}, {"id": "a"}, {"id": 3}, "c", None]})
        self.assertEqual(self.known(), ["a", "b"])

    def test_delta(self):
        """
        C{joined} and C{left} change only what they name.
        """
        self.directory.update({"devices": [{"id": "a"}, {"id": "b"}]})
        self.directory.update({"joined": [{"id": "c", "address": "127.0.0.1:1"}, 7],
                               "left": ["a", 9, "zzz"]})
        self.assertEqual(self.known(), ["b", "c"])
        self.assertEqual(self.directory.peers()["c"]["address"], "127.0.0.1:1")

    def test_pagedList(self):
        """
        A whole list sent in pages replaces what was known only once its
        last page arrived, and then holds the devices of every page.
        """
        self.directory.update({"devices": [{"id": "old"}]})
        self.directory.update({"devices": [{"id": "a"}], "page": 1, "pages": 3})
        self.directory.update({"devices": [{"id": "b"}], "page": 2, "pages": 3})
        self.assertEqual(self.known(), ["old"])
        self.directory.update({"devices": [{"id": "c"}], "page": 3, "pages": 3})
        self.assertEqual(self.known(), ["a", "b", "c"])

    def test_pagedListStartsOver(self):
        """
        A first page while a list is coming starts that list over; a list
        in one page replaces everything, pages so far included.
        """
        self.directory.update({"devices": [{"id": "a"}], "page": 1, "pages": 2})
        self.directory.update({"devices": [{"id": "b"}], "page": 1, "pages": 2})
        self.directory.update({"devices": [{"id": "c"}], "page": 2, "pages": 2})
        self.assertEqual(self.known(), ["b", "c"])
        self.directory.update({"devices": [{"id": "d"}], "page": 1, "pages": 2})
        self.directory.update({"devices": [{"id": "e"}]})
        self.directory.update({"devices": [{"id": "f"}], "page": 2, "pages": 2})
        self.assertEqual(self.known(), ["f"])

    def test_deltaWhilePaging(self):
        """
        A change while a list is coming applies to what is known now; the
        list then replaces it.
        """
        self.directory.update({"devices": [{"id": "a"}]})
        self.directory.update({"devices": [{"id": "b"}], "page": 1, "pages": 2})
        self.directory.update({"joined": [{"id": "c"}]})
        self.assertEqual(self.known(), ["a", "c"])
        self.directory.update({"devices": [{"id": "d"}], "page": 2, "pages": 2})
        self.assertEqual(self.known(), ["b", "d"])

    def test_clear(self):
        """
        Clearing forgets every peer and any list half received.
        """
        self.directory.update({"devices": [{"id": "a"}]})
        self.directory.update({"devices": [{"id": "b"}], "page": 1, "pages": 2})
        self.directory.clear()
        self.assertEqual(self.known(), [])
        self.directory.update({"devices": [{"id": "c"}], "page": 2, "pages": 2})
        self.assertEqual(self.known(), ["c"])


class DirectoryMachineTests(SynchronousTestCase):
    """
    Tests for L{DirectoryMachine}.
    """

    def test_diagram(self):
        """
        Pages lead to Paging and the last one (or a whole list, or
        clearing) back to Complete; every input has an answer in every
        state.
        """
        expected = {
            ("Complete", "firstPage", "Paging"), ("Complete", "nextPage", "Paging"),
            ("Paging", "firstPage", "Paging"), ("Paging", "nextPage", "Paging"),
            ("Paging", "lastPage", "Complete"), ("Complete", "lastPage", "Complete"),
            ("Paging", "wholeList", "Complete"), ("Complete", "wholeList", "Complete"),
            ("Paging", "cleared", "Complete"), ("Complete", "cleared", "Complete"),
            ("Paging", "delta", "Paging"), ("Complete", "delta", "Complete"),
            ("Paging", "state", "Paging"), ("Complete", "state", "Complete"),
        }
        self.assertEqual(transitions(DirectoryMachine), expected)
