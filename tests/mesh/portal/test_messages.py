"""
Tests for L{pz.mesh.messages}: the portal protocol's structures and the
account name rules.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh import messages
from pz.mesh.messages import (
    TRANSACTIONS,
    DataItem,
    MeshRequest,
    MeshResponse,
    accountNameFingerprint,
    accountProblems,
    normaliseAccount,
    responseTypeFor,
)
from pz.mesh.model import Account
from pz.mesh.schema import fromJSON

from tests.mesh.strategies import structures

_MESSAGES = [getattr(messages, name) for name in messages.__all__
             if isinstance(getattr(messages, name), type)]


class TransactionTableTests(SynchronousTestCase):
    """
    The eleven transactions of the Reference draft, and GetRecords of the
    Client-Service Protocol draft.
    """

    def test_names(self):
        """
        Every transaction of section 7, and GetRecords, named as the drafts
        name them, with request and response types named as the drafts
        spell them.
        """
        self.assertEqual(
            [(name, req.__name__, resp.__name__) for name, req, resp in TRANSACTIONS],
            [("Hello", "HelloRequest", "HelloResponse"),
             ("ValidateAccount", "ValidateRequest", "ValidateResponse"),
             ("CreateAccount", "CreateRequest", "CreateResponse"),
             ("Get", "GetRequest", "GetResponse"),
             ("GetRecords", "GetRecordsRequest", "GetRecordsResponse"),
             ("Publish", "PublishRequest", "PublishResponse"),
             ("Status", "StatusRequest", "StatusResponse"),
             ("ConnectStart", "ConnectStartRequest", "ConnectStartResponse"),
             ("ConnectStatus", "ConnectStatusRequest", "ConnectStatusResponse"),
             ("ConnectPending", "ConnectPendingRequest", "ConnectPendingResponse"),
             ("ConnectComplete", "ConnectCompleteRequest", "ConnectCompleteResponse"),
             ("Transfer", "TransferRequest", "TransferResponse")],
        )

    def test_inheritance(self):
        """
        Requests are MeshRequests and responses MeshResponses (the draft's
        Connect*Response inherit MeshRequest by mistake).
        """
        for _, request, response in TRANSACTIONS:
            self.assertTrue(issubclass(request, MeshRequest))
            self.assertTrue(issubclass(response, MeshResponse))
            self.assertIs(responseTypeFor(request), response)
        self.assertIs(responseTypeFor(Account), MeshResponse)

    def test_dataItemHoldsAnyEntry(self):
        """
        A DataItem's Entry is tagged, so any Mesh structure round-trips in
        it.
        """
        item = DataItem(Sequence=1, Entry=Account(AccountID="alice"))
        self.assertEqual(fromJSON(item.toJSON()), item)
        self.assertIn(b'"Entry":{"Account":{', item.toJSON())

    @settings(max_examples=150, deadline=None)
    @given(st.sampled_from(_MESSAGES).flatmap(structures))
    def test_roundTrip(self, message):
        """
        Every message and common structure round-trips exactly through its
        tagged JSON.
        """
        self.assertEqual(fromJSON(message.toJSON()), message)
        self.assertEqual(fromJSON(message.toJSON()).toJSON(), message.toJSON())


class AccountNameTests(SynchronousTestCase):
    """
    Account names: rules, case, fingerprints.
    """

    def test_rules(self):
        """
        3 to 64 of a-z (either case), digits, '.', '_', '-', '@', starting
        with a letter or digit.
        """
        for good in ("abc", "Alice", "alice@example.com", "a.b_c-d", "0" * 64):
            self.assertEqual(accountProblems(good), ("", None), good)
        self.assertEqual(accountProblems("a b!b")[0], " !")
        self.assertIsNotNone(accountProblems("-abc")[1])

    def test_caseInsensitive(self):
        """
        Names are kept lower case, so their fingerprints ignore case.
        """
        self.assertEqual(normaliseAccount("AlIcE"), "alice")
        self.assertEqual(accountNameFingerprint("ALICE"), accountNameFingerprint("alice"))
        self.assertNotEqual(accountNameFingerprint("alice"), accountNameFingerprint("alice2"))
