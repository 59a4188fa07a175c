"""
Tests for L{pzh.portal.service}: every transaction and every status code it
can answer, the signature each state change needs, account names, Get
paging, and Transfer replayed into a second portal.
"""

import sqlite3

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase

from pz.mesh.builders import newApplicationIdentifier
from pz.mesh.errors import MeshFormatError, MeshSignatureError
from pz.mesh.messages import (
    ConnectCompleteRequest,
    ConnectPendingRequest,
    ConnectStartRequest,
    ConnectStatusRequest,
    CreateRequest,
    DataItem,
    GetRequest,
    HelloRequest,
    KeyValue,
    MeshResponse,
    PublishRequest,
    SearchConstraints,
    StatusRequest,
    TransferRequest,
    ValidateRequest,
    accountNameFingerprint,
)
from pz.mesh.model import (
    ApplicationProfileEntry,
    DeviceProfile,
    OfflineEscrowEntry,
    PasswordProfile,
    SignedDeviceProfile,
)
from pz.mesh.schema import encodeDateTime
from pz.mesh.signing import sign, unverifiedPayload
from pzh.portal.service import PortalService, PortalSettings
from pzh.portal.store import ChainError, SQLitePortalStore
from twisted.internet.task import Clock

from tests.mesh.portal._support import EPOCH, T0, PortalFixture, hours, makeDevice, makePerson


class ServiceTestBase(SynchronousTestCase):
    """
    A portal, and Alice, whose profile names her account.
    """

    settings = PortalSettings()
    enroller = None

    def setUp(self):
        self.portal = PortalFixture(self, self.settings, self.enroller)
        self.alice = makePerson("alice")

    def call(self, request):
        """
        Run one transaction.
        """
        return self.portal.service.dispatch(request)

    def createAlice(self):
        """
        Create Alice's account; return the response.
        """
        response = self.call(CreateRequest(Account="alice", Profile=self.alice.personal))
        self.assertEqual(response.Status, 201, response.StatusDescription)
        return response

    def assertRefused(self, request, status, contains=None):
        """
        C{request} is answered with C{status} and stores nothing.
        """
        before = self.portal.tables()
        response = self.call(request)
        self.assertEqual(response.Status, status, response.StatusDescription)
        if contains is not None:
            self.assertIn(contains, response.StatusDescription)
        self.assertEqual(self.portal.tables(), before)
        return response

    def startConnection(self, device=None):
        """
        A new device asks to join Alice's account; return (device, request).
        """
        device = device or makeDevice("tablet")
        request = self.alice.request(device)
        response = self.call(ConnectStartRequest(AccountID="alice", SignedRequest=request))
        self.assertEqual(response.Status, 201, response.StatusDescription)
        return device, request


class HelloValidateTests(ServiceTestBase):
    """
    Hello and ValidateAccount.
    """

    settings = PortalSettings(uri="https://portal.example/.well-known/mmm/")

    def test_hello(self):
        """
        Hello always succeeds, naming the draft's version, JSON and the
        portal's URI.
        """
        response = self.call(HelloRequest())
        self.assertEqual(type(response).__name__, "HelloResponse")
        self.assertEqual(response.Status, 201)
        self.assertEqual((response.Version.Major, response.Version.Minor), (3, 0))
        self.assertEqual(response.Version.Encodings[0].ID, ("application/json",))
        self.assertEqual(response.Version.URI, ("https://portal.example/.well-known/mmm/",))

    def test_validateAcceptable(self):
        """
        An acceptable name is Valid, with the length rules and no reason.
        """
        response = self.call(ValidateRequest(Account="Alice.Example@home", Reserve=True))
        self.assertEqual(response.Status, 201)
        self.assertTrue(response.Valid)
        self.assertEqual((response.Minimum, response.Maximum), (3, 64))
        self.assertIsNone(response.InvalidCharacters)
        self.assertIsNone(response.Reason)

    def test_validateRefusals(self):
        """
        Too short, too long, bad characters (each listed once) and a bad first
        character are not Valid, each with a reason; the transaction itself
        succeeds.
        """
        cases = {
            "al": ("", "at least 3"),
            "a" * 65: ("", "at most 64"),
            "al ice!!/": (" !/", "may not contain"),
            ".alice": ("", "starts with a letter or a digit"),
            "älice": ("ä", "may not contain"),
        }
        for name, (invalid, reason) in cases.items():
            response = self.call(ValidateRequest(Account=name))
            self.assertEqual(response.Status, 201)
            self.assertFalse(response.Valid, name)
            self.assertEqual(response.InvalidCharacters or "", invalid, name)
            self.assertIn(reason, response.Reason)
            self.assertEqual((response.Minimum, response.Maximum), (3, 64))

    def test_refusalLoggedShort(self):
        """
        A refusal whose reason quotes what the client sent (here a 5,000
        character account name) is logged cut short, saying how long it
        was: a client must not write the log (found by the fuzz run, whose
        log lines of 440 KB broke trial's worker link).  The answer still
        says it all.
        """
        events = []
        self.portal.service.log = Logger(observer=events.append)
        response = self.call(CreateRequest(Account="a" * 5000, Profile=self.alice.personal))
        self.assertEqual(response.Status, 400)
        self.assertIn("a" * 5000, response.StatusDescription)
        [event] = events
        self.assertLess(len(event["reason"]), 400)
        self.assertIn(f"({len(response.StatusDescription)} characters)", event["reason"])

    def test_validateTaken(self):
        """
        A name already taken, in any case, is not Valid.
        """
        self.createAlice()
        response = self.call(ValidateRequest(Account="ALICE"))
        self.assertFalse(response.Valid)
        self.assertIn("already exists", response.Reason)

    def test_validateNoAccount(self):
        """
        ValidateRequest without an Account is a bad request.
        """
        self.assertEqual(self.call(ValidateRequest()).Status, 400)


class CreateTests(ServiceTestBase):
    """
    CreateAccount.
    """

    def test_create(self):
        """
        An account is created in lower case, bound to the profile, with two
        log records: the Account and the personal profile.
        """
        response = self.call(CreateRequest(Account="Alice", Profile=self.alice.personal))
        self.assertEqual((type(response).__name__, response.Status), ("CreateResponse", 201))
        account = self.portal.store.account("alice")
        self.assertEqual((account.profile, account.status), (self.alice.udf, "Open"))
        self.assertEqual(self.portal.store.head().sequence, 2)
        self.assertEqual(self.portal.store.entry("Account-alice").type, "Account")
        self.assertEqual(self.portal.store.entry(self.alice.udf).data, self.alice.personal.toJSON())
        self.portal.store.verifyChain()

    def test_duplicate(self):
        """
        The same name again, in any case, is 409 AlreadyExists.
        """
        self.createAlice()
        other = makePerson("alice")
        self.assertRefused(CreateRequest(Account="ALICE", Profile=other.personal), 409, "already exists")

    def test_profileAlreadyBound(self):
        """
        A profile that already has an account here cannot take another
        (409), even if it names both.
        """
        names = [accountNameFingerprint("alice"), accountNameFingerprint("alice2")]
        self.alice.personal = self.alice.profileAt(T0, names=names)
        self.createAlice()
        self.assertRefused(CreateRequest(Account="alice2", Profile=self.alice.personal), 409,
                           "already has an account")

    def test_invalidName(self):
        """
        A name that breaks the rules is 400, and nothing is stored.
        """
        self.assertRefused(CreateRequest(Account="a!", Profile=self.alice.personal), 400)
        self.assertRefused(CreateRequest(Profile=self.alice.personal), 400)

    def test_noProfile(self):
        """
        CreateRequest without a profile is 400.
        """
        self.assertRefused(CreateRequest(Account="alice"), 400, "Profile")

    def test_profileNotSigned(self):
        """
        A profile signed by a key that is not an online key is 401.
        """
        forged = self.alice.profileAt(T0, signer=self.alice.master.signature)
        self.assertRefused(CreateRequest(Account="alice", Profile=forged), 401)

    def test_profileDoesNotNameAccount(self):
        """
        A genuine profile that does not list the account's fingerprint in
        its Names (someone replaying Alice's public profile to squat a name)
        is 401.
        """
        self.assertRefused(CreateRequest(Account="mallory", Profile=self.alice.personal), 401,
                           "does not authorise")


class PublishTests(ServiceTestBase):
    """
    Publish, for each kind of entry.
    """

    def setUp(self):
        super().setUp()
        self.createAlice()

    def publish(self, entry):
        return self.call(PublishRequest(Entry=entry))

    def test_personalUpdate(self):
        """
        A newer personal profile is 202 and updates the account's modified
        time; the same profile again is 201 "already published" with no new
        record.
        """
        newer = self.alice.profileAt(T0 + hours(1))
        self.portal.later()
        response = self.publish(newer)
        self.assertEqual(response.Status, 202, response.StatusDescription)
        self.assertEqual(self.portal.store.entry(self.alice.udf).data, newer.toJSON())
        self.assertEqual(self.portal.store.account("alice").modified, encodeDateTime(self.portal.now()))
        head = self.portal.store.head()
        response = self.publish(newer)
        self.assertEqual(response.Status, 201)
        self.assertIn("already", response.StatusDescription)
        self.assertEqual(self.portal.store.head(), head)

    def test_personalStale(self):
        """
        An older or equally old personal profile is 401 (a replay).
        """
        self.publish(self.alice.profileAt(T0 + hours(2)))
        self.assertRefused(PublishRequest(Entry=self.alice.profileAt(T0 + hours(1))), 401)

    def test_personalForged(self):
        """
        A personal profile signed by a key that is not an online key is 401.
        """
        forged = self.alice.profileAt(T0 + hours(1), signer=self.alice.admin.keys.signature)
        self.assertRefused(PublishRequest(Entry=forged), 401)

    def test_personalWithoutAccount(self):
        """
        A personal profile with no account here is 404.
        """
        self.assertRefused(PublishRequest(Entry=makePerson("bob").personal), 404)

    def test_master(self):
        """
        The master profile is filed as Master-UDF (its Identifier is the
        personal profile's): 201, the identical one again 201 "already",
        one older than the master the personal profile holds 401.
        """
        response = self.publish(self.alice.signedMaster)
        self.assertEqual(response.Status, 201, response.StatusDescription)
        self.assertEqual(self.portal.store.entry("Master-" + self.alice.udf).type, "SignedMasterProfile")
        self.assertEqual(self.portal.store.entry(self.alice.udf).type, "SignedPersonalProfile")
        self.assertIn("already", self.publish(self.alice.signedMaster).StatusDescription)
        alice = makePerson("alice2")
        self.call(CreateRequest(Account="alice2", Profile=alice.personal))
        older = alice.master.signedProfile(updated=T0 - hours(1))
        self.assertRefused(PublishRequest(Entry=older), 401)

    def test_masterOfNoAccount(self):
        """
        A master profile of no account here is 404.
        """
        self.assertRefused(PublishRequest(Entry=makePerson("bob").signedMaster), 404)

    def test_entryReadOnce(self):
        """
        A Publish reads the entry held under the identifier once, and
        admission checks against that reading: a new device (201), a newer
        version (202), a stale one (401, nothing stored), an escrow entry
        written once (201, then 409), a personal and a master profile each
        read their entry once too.
        """
        reads = []
        entry = self.portal.store.entry

        def counted(identifier):
            reads.append(identifier)
            return entry(identifier)

        self.patch(self.portal.store, "entry", counted)

        def publishOnce(published, status):
            del reads[:]
            before = self.portal.tables()
            response = self.publish(published)
            self.assertEqual(response.Status, status, response.StatusDescription)
            self.assertEqual(reads.count(reads[0]), 1, reads)
            return before

        device = makeDevice("phone")

        def version(when):
            payload = attrs.evolve(unverifiedPayload(device.profile), Updated=when)
            return sign(payload, device.keys.signature)

        publishOnce(device.profile, 201)
        publishOnce(version(T0 + hours(1)), 202)
        before = publishOnce(version(T0 - hours(1)), 401)
        self.assertEqual(self.portal.tables(), before)
        from pz.mesh.model import JoseRecipient, JoseWebEncryption

        escrow = OfflineEscrowEntry(
            Identifier="E1",
            EncryptedData=JoseWebEncryption(recipients=[JoseRecipient(header={"kid": "x"})],
                                            ciphertext=b"1"),
        )
        publishOnce(escrow, 201)
        publishOnce(attrs.evolve(escrow, EncryptedData=attrs.evolve(escrow.EncryptedData,
                                                                    ciphertext=b"2")), 409)
        publishOnce(self.alice.profileAt(T0 + hours(1)), 202)
        publishOnce(self.alice.signedMaster, 201)

    def test_device(self):
        """
        A device profile is 201, a newer version 202, an older one 401, and a
        tampered one 401.
        """
        device = self.alice.admin
        self.assertEqual(self.publish(device.profile).Status, 201)
        newer = sign(
            attrs.evolve(unverifiedPayload(device.profile), Updated=T0 + hours(1)), device.keys.signature
        )
        self.assertEqual(self.publish(newer).Status, 202)
        self.assertRefused(PublishRequest(Entry=device.profile), 401)
        tampered = sign(
            attrs.evolve(unverifiedPayload(device.profile), Updated=T0 + hours(2)),
            makeDevice().keys.signature,
        )
        self.assertRefused(PublishRequest(Entry=tampered), 401)

    def application(self, signer=None, entrySigners=None):
        """
        Alice's profile with a password application, published; and that
        application's signed profile.
        """
        appId = newApplicationIdentifier()
        entry = ApplicationProfileEntry(
            Identifier=appId, Type="PasswordProfile",
            SignID=entrySigners or [self.alice.admin.udf],
        )
        self.version = getattr(self, "version", 0) + 1
        updated = self.alice.profileAt(T0 + hours(self.version), applications=[entry])
        self.assertEqual(self.publish(updated).Status, 202)
        return sign(PasswordProfile(Identifier=appId, Updated=T0), signer or self.alice.admin.keys.signature)

    def test_application(self):
        """
        An application profile signed by a device its entry names is 201 and
        belongs to the account; by another device, 401.
        """
        signed = self.application()
        self.assertEqual(self.publish(signed).Status, 201)
        self.assertEqual(self.portal.store.entry(signed.Identifier).account, "alice")
        other = self.application()
        forged = sign(unverifiedPayload(other), makeDevice().keys.signature)
        self.assertRefused(PublishRequest(Entry=forged), 401)

    def test_applicationNotListed(self):
        """
        An application no personal profile lists is 404.
        """
        signed = sign(PasswordProfile(Identifier=newApplicationIdentifier(), Updated=T0),
                      self.alice.admin.keys.signature)
        self.assertRefused(PublishRequest(Entry=signed), 404)

    def test_identifierTaken(self):
        """
        An entry whose identifier another kind of entry uses is 409: here an
        application profile named like a published device.
        """
        device = makeDevice()
        self.assertEqual(self.publish(device.profile).Status, 201)
        entry = ApplicationProfileEntry(Identifier=device.udf, SignID=[self.alice.admin.udf])
        self.publish(self.alice.profileAt(T0 + hours(1), applications=[entry]))
        squatter = sign(PasswordProfile(Identifier=device.udf, Updated=T0), self.alice.admin.keys.signature)
        self.assertRefused(PublishRequest(Entry=squatter), 409)

    def test_escrowWrittenOnce(self):
        """
        An unsigned escrow entry is filed as Escrow-ID and written once: the
        same again is 201 "already", a different one 409.
        """
        from pz.mesh.model import JoseWebEncryption, JoseRecipient

        jwe = JoseWebEncryption(recipients=[JoseRecipient(header={"kid": "x"})], ciphertext=b"1")
        escrow = OfflineEscrowEntry(Identifier="E1", EncryptedData=jwe)
        self.assertEqual(self.publish(escrow).Status, 201)
        self.assertIsNotNone(self.portal.store.entry("Escrow-E1"))
        self.assertEqual(self.publish(escrow).Status, 201)
        other = OfflineEscrowEntry(Identifier="E1", EncryptedData=attrs.evolve(jwe, ciphertext=b"2"))
        self.assertRefused(PublishRequest(Entry=other), 409)

    def test_notPublishable(self):
        """
        No entry, an entry without identifier, and connection requests are
        400.
        """
        self.assertRefused(PublishRequest(), 400)
        self.assertRefused(PublishRequest(Entry=SignedDeviceProfile()), 400)
        request = self.alice.request(makeDevice())
        self.assertRefused(PublishRequest(Entry=request), 400, "ConnectStart")


class GetTests(ServiceTestBase):
    """
    Get by identifier, account and key/values, with paging.
    """

    def setUp(self):
        super().setUp()
        self.createAlice()
        self.devices = []
        for n in range(5):
            device = makeDevice(f"d{n}")
            self.portal.later()
            self.assertEqual(self.call(PublishRequest(Entry=device.profile)).Status, 201)
            self.devices.append(device)

    def get(self, **fields):
        return self.call(GetRequest(**fields))

    def test_byIdentifier(self):
        """
        Get by identifier returns that entry, with its sequence and time.
        """
        response = self.get(Identifier=self.devices[2].udf)
        self.assertEqual(response.Status, 201)
        [item] = response.DataItems
        self.assertEqual(item.Entry, self.devices[2].profile)
        self.assertEqual(item.Sequence, 5)
        self.assertIsNone(item.Hash)

    def test_full(self):
        """
        With Full, each item carries its log record's chain fields, and they
        recompute.
        """
        from pzh.portal.store import recordHash

        [item] = self.get(Identifier=self.devices[0].udf, Full=True).DataItems
        record = self.portal.store.record(item.Sequence)
        self.assertEqual((item.Previous, item.Hash), (record.previous.hex(), record.hash.hex()))
        self.assertEqual(
            recordHash(bytes.fromhex(item.Previous), item.Sequence, encodeDateTime(item.Published),
                       item.Entry.toJSON()).hex(),
            item.Hash,
        )

    def test_byAccount(self):
        """
        Get by account, Multiple, returns the account's entries (the Account
        and the personal profile); an unknown account is 404.
        """
        response = self.get(Account="ALICE", Multiple=True)
        self.assertEqual([type(i.Entry).__name__ for i in response.DataItems],
                         ["Account", "SignedPersonalProfile"])
        self.assertRefused(GetRequest(Account="bob"), 404)

    def test_byKeyValues(self):
        """
        Key/values select: every device profile by Type; one by Name.
        """
        response = self.get(KeyValues=[KeyValue(Key="Type", Value="SignedDeviceProfile")], Multiple=True)
        self.assertEqual([i.Entry.Identifier for i in response.DataItems], [d.udf for d in self.devices])
        response = self.get(KeyValues=[KeyValue(Key="Device", Value=self.alice.admin.udf)])
        self.assertEqual(response.DataItems[0].Entry.Identifier, self.alice.udf)

    def test_notMultiple(self):
        """
        Without Multiple, only the most recently published match is returned.
        """
        response = self.get(KeyValues=[KeyValue(Key="Type", Value="SignedDeviceProfile")])
        self.assertEqual([i.Entry.Identifier for i in response.DataItems], [self.devices[-1].udf])
        self.assertIsNone(response.PageKey)

    def test_notFoundAndBad(self):
        """
        Nothing matching is 404; no criterion, a half KeyValue, MaxEntries 0,
        MaxBytes 0 and a PageKey this portal did not issue are 400.
        """
        self.assertEqual(self.get(Identifier="MNOPE").Status, 404)
        self.assertEqual(self.get(KeyValues=[KeyValue(Key="Type", Value="Nope")], Multiple=True).Status, 404)
        self.assertEqual(self.get().Status, 400)
        self.assertEqual(self.get(KeyValues=[KeyValue(Key="Type")]).Status, 400)
        for constraints in (SearchConstraints(MaxEntries=0), SearchConstraints(MaxBytes=0),
                            SearchConstraints(PageKey="garbage"), SearchConstraints(PageKey="e30")):
            self.assertEqual(self.get(Identifier="x", SearchConstraints=constraints).Status, 400)

    def test_timeWindow(self):
        """
        NotBefore (inclusive) and Before (exclusive) select by publication
        time.
        """
        items = self.get(KeyValues=[KeyValue(Key="Type", Value="SignedDeviceProfile")],
                         Multiple=True).DataItems
        window = SearchConstraints(NotBefore=items[1].Published, Before=items[3].Published)
        response = self.get(KeyValues=[KeyValue(Key="Type", Value="SignedDeviceProfile")],
                            Multiple=True, SearchConstraints=window)
        self.assertEqual([i.Sequence for i in response.DataItems], [items[1].Sequence, items[2].Sequence])

    def pages(self, first, maxEntries=None, maxBytes=None, between=None):
        """
        Follow PageKeys from C{first}; return every item and the page count.
        C{between} is called between pages.
        """
        response = self.call(first)
        items, count = list(response.DataItems), 1
        while response.PageKey:
            if between:
                between()
            response = self.call(GetRequest(SearchConstraints=SearchConstraints(
                MaxEntries=maxEntries, MaxBytes=maxBytes, PageKey=response.PageKey)))
            self.assertEqual(response.Status, 201)
            items.extend(response.DataItems)
            count += 1
        return items, count

    def test_pagingMaxEntries(self):
        """
        MaxEntries 2 over five devices gives three pages, every device once.
        """
        first = GetRequest(KeyValues=[KeyValue(Key="Type", Value="SignedDeviceProfile")], Multiple=True,
                           SearchConstraints=SearchConstraints(MaxEntries=2))
        items, count = self.pages(first, maxEntries=2)
        self.assertEqual(count, 3)
        self.assertEqual([i.Entry.Identifier for i in items], [d.udf for d in self.devices])

    def test_pagingMaxBytes(self):
        """
        MaxBytes smaller than one entry still returns one entry per page, so
        paging always ends and returns everything once.
        """
        first = GetRequest(KeyValues=[KeyValue(Key="Type", Value="SignedDeviceProfile")], Multiple=True,
                           SearchConstraints=SearchConstraints(MaxBytes=10))
        items, count = self.pages(first, maxBytes=10)
        self.assertEqual(count, 5)
        self.assertEqual(len({i.Entry.Identifier for i in items}), 5)

    def test_pagingIsASnapshot(self):
        """
        Entries published or updated while a client pages neither appear
        twice nor vanish: the answer is the state when paging began.
        """
        first = GetRequest(KeyValues=[KeyValue(Key="Type", Value="SignedDeviceProfile")], Multiple=True,
                           SearchConstraints=SearchConstraints(MaxEntries=1))
        updates = iter(self.devices)

        def publishMore():
            device = next(updates)
            newer = sign(attrs.evolve(unverifiedPayload(device.profile), Updated=T0 + hours(9)),
                         device.keys.signature)
            self.portal.later()
            self.assertEqual(self.call(PublishRequest(Entry=newer)).Status, 202)
            self.call(PublishRequest(Entry=makeDevice().profile))

        items, _ = self.pages(first, maxEntries=1, between=publishMore)
        self.assertEqual([i.Entry.Identifier for i in items], [d.udf for d in self.devices])
        self.assertEqual([i.Entry for i in items], [d.profile for d in self.devices])


class PagingPropertyTests(SynchronousTestCase):
    """
    The paging property, for any history of publications and any page sizes.
    """

    def setUp(self):
        self.pool = [makeDevice(f"p{n}") for n in range(6)]

    @settings(max_examples=40, deadline=None)
    @given(
        history=st.lists(st.integers(0, 5), min_size=1, max_size=12),
        during=st.lists(st.integers(0, 5), max_size=8),
        pageSize=st.integers(1, 4),
        maxBytes=st.one_of(st.none(), st.integers(1, 6000)),
    )
    def test_everyEntryExactlyOnce(self, history, during, pageSize, maxBytes):
        """
        Whatever was published (new devices and new versions), and whatever
        is published between pages, paging with any MaxEntries and MaxBytes
        returns every entry that existed when paging began exactly once, in
        the version current then.
        """
        clock = Clock()
        clock.advance(EPOCH)
        store = SQLitePortalStore(":memory:")
        self.addCleanup(store.close)
        portal = PortalService(store, clock)
        versions = {}

        def publish(index):
            device = self.pool[index]
            versions[index] = versions.get(index, 0) + 1
            payload = attrs.evolve(unverifiedPayload(device.profile), Updated=T0 + hours(versions[index]))
            clock.advance(1)
            response = portal.dispatch(PublishRequest(Entry=sign(payload, device.keys.signature)))
            assert response.Status in (201, 202), response

        for index in history:
            publish(index)
        expected = {
            self.pool[i].udf: store.entry(self.pool[i].udf).data for i in set(history)
        }
        constraints = SearchConstraints(MaxEntries=pageSize, MaxBytes=maxBytes)
        response = portal.dispatch(GetRequest(
            KeyValues=[KeyValue(Key="Type", Value="SignedDeviceProfile")], Multiple=True,
            SearchConstraints=constraints))
        seen = []
        pending = list(during)
        while True:
            self.assertEqual(response.Status, 201)
            seen.extend(response.DataItems)
            if response.PageKey is None:
                break
            if pending:
                publish(pending.pop())
            response = portal.dispatch(GetRequest(SearchConstraints=attrs.evolve(
                constraints, PageKey=response.PageKey)))
        identifiers = [item.Entry.Identifier for item in seen]
        self.assertEqual(len(identifiers), len(set(identifiers)))
        self.assertEqual({i.Entry.Identifier: i.Entry.toJSON() for i in seen}, expected)


class StatusTests(ServiceTestBase):
    """
    Status: the checkpoint.
    """

    def test_empty(self):
        """
        An empty portal's checkpoint is 64 zeros, with no write time.
        """
        response = self.call(StatusRequest())
        self.assertEqual(response.Status, 201)
        self.assertEqual(response.CheckpointValue, "0" * 64)
        self.assertIsNone(response.LastWriteTime)

    def test_afterWrites(self):
        """
        After writes, LastWriteTime is the last record's time, and the
        checkpoint the head's hash, which changes with every write.
        """
        self.createAlice()
        first = self.call(StatusRequest())
        self.assertEqual(first.CheckpointValue, self.portal.store.head().hash.hex())
        self.assertEqual(first.LastWriteTime, T0)
        self.assertEqual(first.LastCheckpointTime, T0)
        self.assertIsNone(first.NextCheckpointTime)
        self.portal.later(5)
        self.call(PublishRequest(Entry=makeDevice().profile))
        second = self.call(StatusRequest())
        self.assertNotEqual(second.CheckpointValue, first.CheckpointValue)
        self.assertEqual(second.LastWriteTime, self.portal.now())


class ConnectTests(ServiceTestBase):
    """
    ConnectStart, ConnectStatus, ConnectPending, ConnectComplete.
    """

    settings = PortalSettings(maxPending=2)

    def setUp(self):
        super().setUp()
        self.createAlice()

    def test_start(self):
        """
        A signed request is pending (201); the identical request again is 201
        with no new record; a new version of it replaces it (202).
        """
        device, request = self.startConnection()
        pending = self.portal.store.pendingRequest("alice", device.udf)
        self.assertEqual(pending.data, request.toJSON())
        head = self.portal.store.head()
        response = self.call(ConnectStartRequest(AccountID="Alice", SignedRequest=request))
        self.assertEqual((response.Status, self.portal.store.head()), (201, head))
        again = self.alice.request(attrs.evolve(device, profile=sign(
            attrs.evolve(unverifiedPayload(device.profile), Updated=T0 + hours(1)), device.keys.signature)))
        self.assertEqual(self.call(ConnectStartRequest(AccountID="alice", SignedRequest=again)).Status, 202)
        self.assertEqual(self.portal.store.pendingRequest("alice", device.udf).data, again.toJSON())

    def test_startRefusals(self):
        """
        Unknown account 404, no request 400, a request for another profile
        400, a request not signed by the device 401, a device already
        connected 409; none stores anything.
        """
        device = makeDevice()
        request = self.alice.request(device)
        self.assertRefused(ConnectStartRequest(AccountID="bob", SignedRequest=request), 404)
        self.assertRefused(ConnectStartRequest(AccountID="alice"), 400)
        bob = makePerson("bob")
        self.assertRefused(ConnectStartRequest(AccountID="alice", SignedRequest=bob.request(device)), 400)
        forged = self.alice.request(device, signer=makeDevice().keys.signature)
        self.assertRefused(ConnectStartRequest(AccountID="alice", SignedRequest=forged), 401)
        self.assertRefused(
            ConnectStartRequest(AccountID="alice", SignedRequest=self.alice.request(self.alice.admin)), 409
        )

    def test_overload(self):
        """
        Beyond the pending limit a new device is told 503 ServerOverload;
        one already pending may still replace its request.
        """
        self.startConnection()
        self.startConnection()
        self.assertRefused(
            ConnectStartRequest(AccountID="alice", SignedRequest=self.alice.request(makeDevice())), 503
        )

    def test_csrForAnotherKey(self):
        """
        A zone certificate request for a key other than the device's
        authentication key is 401.
        """
        device = makeDevice()
        other = makeDevice()
        profile = unverifiedPayload(device.profile)
        swapped = attrs.evolve(profile, DeviceAuthenticationKey=attrs.evolve(
            profile.DeviceAuthenticationKey,
            X509CSR=unverifiedPayload(other.profile).DeviceAuthenticationKey.X509CSR))
        device = attrs.evolve(device, profile=sign(swapped, device.keys.signature))
        self.assertRefused(ConnectStartRequest(AccountID="alice", SignedRequest=self.alice.request(device)),
                           401, "authentication key")

    def test_csrMalformed(self):
        """
        An X509CSR that is not a certificate request is 400.
        """
        device = makeDevice()
        profile = unverifiedPayload(device.profile)
        broken = attrs.evolve(profile, DeviceAuthenticationKey=attrs.evolve(
            profile.DeviceAuthenticationKey, X509CSR=b"not a csr"))
        device = attrs.evolve(device, profile=sign(broken, device.keys.signature))
        self.assertRefused(ConnectStartRequest(AccountID="alice", SignedRequest=self.alice.request(device)),
                           400)

    def test_statusPendingThenAnswered(self):
        """
        ConnectStatus: pending (201, no Result), then the signed result;
        unknown device 404, no DeviceID 400, unknown account 404.
        """
        device, request = self.startConnection()
        response = self.call(ConnectStatusRequest(AccountID="alice", DeviceID=device.udf))
        self.assertEqual((response.Status, response.Result), (201, None))
        result = self.alice.result(request)
        self.assertEqual(self.call(ConnectCompleteRequest(AccountID="alice", Result=result)).Status, 201)
        response = self.call(ConnectStatusRequest(AccountID="alice", DeviceID=device.udf))
        self.assertEqual((response.Status, response.Result, response.Zone), (201, result, None))
        self.assertEqual(self.call(ConnectStatusRequest(AccountID="alice", DeviceID="MX")).Status, 404)
        self.assertEqual(self.call(ConnectStatusRequest(AccountID="alice")).Status, 400)
        self.assertEqual(self.call(ConnectStatusRequest(AccountID="bob", DeviceID=device.udf)).Status, 404)

    def test_pendingPaging(self):
        """
        ConnectPending lists requests oldest first, page by page; a PageKey
        of another account or not issued here is 400; an unknown account 404.
        """
        first, _ = self.startConnection()
        self.portal.later()
        second, _ = self.startConnection()
        response = self.call(ConnectPendingRequest(AccountID="alice"))
        self.assertEqual([p.Identifier for p in response.Pending], [first.udf, second.udf])
        page = self.call(ConnectPendingRequest(AccountID="alice", SearchConstraints=SearchConstraints(MaxEntries=1)))
        self.assertEqual([p.Identifier for p in page.Pending], [first.udf])
        rest = self.call(ConnectPendingRequest(AccountID="alice", SearchConstraints=SearchConstraints(
            MaxEntries=1, PageKey=page.PageKey)))
        self.assertEqual(([p.Identifier for p in rest.Pending], rest.PageKey), ([second.udf], None))
        self.assertEqual(self.call(ConnectPendingRequest(AccountID="bob")).Status, 404)
        self.assertEqual(self.call(ConnectPendingRequest(AccountID="alice", SearchConstraints=SearchConstraints(
            PageKey="xx"))).Status, 400)
        self.call(CreateRequest(Account="bob", Profile=makePerson("bob").personal))
        self.assertEqual(self.call(ConnectPendingRequest(AccountID="bob", SearchConstraints=SearchConstraints(
            PageKey=page.PageKey))).Status, 400)
        self.assertEqual(self.call(ConnectPendingRequest(AccountID="bob")).Pending, ())

    def test_acceptAndRefuse(self):
        """
        An accepted or refused request leaves the pending list; the profile
        itself is not changed by the portal.
        """
        accepted, acceptRequest = self.startConnection()
        refused, refuseRequest = self.startConnection()
        profile = self.portal.store.entry(self.alice.udf)
        for request, answer in ((acceptRequest, "Accepted"), (refuseRequest, "Refused")):
            response = self.call(ConnectCompleteRequest(AccountID="alice", Result=self.alice.result(request, answer)))
            self.assertEqual(response.Status, 201, response.StatusDescription)
        self.assertEqual(self.portal.store.countPending("alice"), 0)
        self.assertEqual(self.portal.store.entry(self.alice.udf), profile)
        status = self.call(ConnectStatusRequest(AccountID="alice", DeviceID=refused.udf))
        self.assertEqual(unverifiedPayload(status.Result).Result, "Refused")

    def test_completeRefusals(self):
        """
        A result not signed by an administration key is 401; one for a
        device with nothing pending 404; one for an earlier version of the
        pending request 404; for another profile or with no result 400. The
        request stays pending and nothing is stored.
        """
        device, request = self.startConnection()
        byDevice = self.alice.result(request, signer=device.keys.signature)
        self.assertRefused(ConnectCompleteRequest(AccountID="alice", Result=byDevice), 401)
        byMaster = self.alice.result(request, signer=self.alice.master.signature)
        self.assertRefused(ConnectCompleteRequest(AccountID="alice", Result=byMaster), 401)
        nobody = self.alice.result(self.alice.request(makeDevice()))
        self.assertRefused(ConnectCompleteRequest(AccountID="alice", Result=nobody), 404)
        stale = self.alice.result(self.alice.request(attrs.evolve(device, profile=sign(
            attrs.evolve(unverifiedPayload(device.profile), Updated=T0 - hours(1)), device.keys.signature))))
        self.assertRefused(ConnectCompleteRequest(AccountID="alice", Result=stale), 404)
        self.assertRefused(ConnectCompleteRequest(AccountID="alice"), 400)
        bob = makePerson("bob")
        self.call(CreateRequest(Account="bob", Profile=bob.personal))
        self.assertRefused(ConnectCompleteRequest(AccountID="bob", Result=self.alice.result(request)), 400)
        self.assertIsNotNone(self.portal.store.pendingRequest("alice", device.udf))


class ConnectionsObserverTests(ServiceTestBase):
    """
    The C{connections} observer hears each connection request stored and
    answered, once it is committed.
    """

    def setUp(self):
        self.heard = []
        self.portal = PortalFixture(self)
        self.portal.service = PortalService(
            self.portal.store, self.portal.clock, PortalSettings(),
            connections=lambda *change: self.heard.append(change))
        self.alice = makePerson("alice")
        self.createAlice()

    def test_startAndComplete(self):
        """
        A request stored is C{pending}; its result, C{Accepted} or
        C{Refused}; a refused transaction is not heard.
        """
        tablet, request = self.startConnection(makeDevice("tablet"))
        watch, other = self.startConnection(makeDevice("watch"))
        self.assertEqual(self.heard, [("alice", tablet.udf, "pending"),
                                      ("alice", watch.udf, "pending")])
        del self.heard[:]
        for signed, answer in ((request, "Accepted"), (other, "Refused")):
            response = self.call(ConnectCompleteRequest(
                AccountID="alice", Result=self.alice.result(signed, answer)))
            self.assertEqual(response.Status, 201, response.StatusDescription)
        self.assertEqual(self.heard, [("alice", tablet.udf, "Accepted"),
                                      ("alice", watch.udf, "Refused")])
        del self.heard[:]
        forged = self.alice.request(makeDevice("rogue"), signer=makeDevice().keys.signature)
        self.assertRefused(ConnectStartRequest(AccountID="alice", SignedRequest=forged), 401)
        self.call(PublishRequest(Entry=makeDevice().profile))
        self.assertEqual(self.heard, [])

    def test_afterCommit(self):
        """
        Through group commit (L{PortalService.submit}), the change is heard
        once the batch that keeps it is committed, not before.
        """
        device = makeDevice("tablet")
        d = self.portal.service.submit(
            ConnectStartRequest(AccountID="alice", SignedRequest=self.alice.request(device)))
        self.assertEqual(self.heard, [])
        self.portal.clock.advance(0)
        self.assertEqual(self.successResultOf(d).Status, 201)
        self.assertEqual(self.heard, [("alice", device.udf, "pending")])

    def test_observerFails(self):
        """
        An observer that fails is logged; the transaction stands.
        """
        def broken(*change):
            raise RuntimeError("no listener")

        self.portal.service = PortalService(self.portal.store, self.portal.clock,
                                            PortalSettings(), connections=broken)
        device, _ = self.startConnection()
        self.assertIsNotNone(self.portal.store.pendingRequest("alice", device.udf))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class RedirectTests(SynchronousTestCase):
    """
    303 for a portal that moved; 307 for writes to a read-only replica.
    """

    def test_moved(self):
        """
        A moved portal answers every transaction 303 with the new URI.
        """
        portal = PortalFixture(self, PortalSettings(movedTo="https://new.example/"))
        for request in (HelloRequest(), StatusRequest(), CreateRequest(Account="alice")):
            response = portal.service.dispatch(request)
            self.assertEqual((response.Status, response.StatusDescription), (303, "https://new.example/"))

    def test_replicaRedirectsWrites(self):
        """
        A replica answers writes 307 with its primary, and reads itself.
        """
        portal = PortalFixture(self, PortalSettings(primary="https://primary.example/"))
        alice = makePerson()
        for request in (CreateRequest(Account="alice", Profile=alice.personal),
                        PublishRequest(Entry=alice.admin.profile),
                        ConnectStartRequest(AccountID="alice"), ConnectCompleteRequest(AccountID="alice")):
            response = portal.service.dispatch(request)
            self.assertEqual((response.Status, response.StatusDescription), (307, "https://primary.example/"))
        self.assertEqual(portal.service.dispatch(StatusRequest()).Status, 201)
        self.assertEqual(portal.service.dispatch(GetRequest(Identifier="x")).Status, 404)


class _BrokenStore:
    """
    A store whose every call raises C{error}.
    """

    def __init__(self, store, error):
        self._store, self._error = store, error

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise self._error
        return fail


class FailureTests(SynchronousTestCase):
    """
    500 and 503, and requests that are not requests.
    """

    def test_internal(self):
        """
        An unexpected exception is 500 with a sentence, no traceback, and is
        logged.
        """
        portal = PortalFixture(self)
        portal.service.store = _BrokenStore(portal.store, ZeroDivisionError("boom"))
        response = portal.service.dispatch(StatusRequest())
        self.assertEqual(response.Status, 500)
        self.assertNotIn("boom", response.StatusDescription)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_busy(self):
        """
        A locked database is 503 ServerOverload.
        """
        portal = PortalFixture(self)
        portal.service.store = _BrokenStore(portal.store, sqlite3.OperationalError("database is locked"))
        self.assertEqual(portal.service.dispatch(StatusRequest()).Status, 503)

    def test_otherDatabaseError(self):
        """
        Another database error is 500.
        """
        portal = PortalFixture(self)
        portal.service.store = _BrokenStore(portal.store, sqlite3.OperationalError("disk I/O error"))
        self.assertEqual(portal.service.dispatch(StatusRequest()).Status, 500)
        self.assertEqual(len(self.flushLoggedErrors(sqlite3.OperationalError)), 1)

    def test_notARequest(self):
        """
        Dispatching a structure that is not a request is 400 MeshResponse.
        """
        response = PortalFixture(self).service.dispatch(DeviceProfile())
        self.assertEqual((type(response), response.Status), (MeshResponse, 400))


class TransferTests(ServiceTestBase):
    """
    Transfer, and replaying it into a second portal.
    """

    def setUp(self):
        super().setUp()
        self.createAlice()
        self.device, request = self.startConnection()
        self.portal.later()
        self.call(ConnectCompleteRequest(AccountID="alice", Result=self.alice.result(request)))
        self.portal.later()
        self.call(PublishRequest(Entry=self.alice.profileAt(T0 + hours(1), devices=[
            self.alice.admin.profile, self.device.profile])))
        self.call(PublishRequest(Entry=self.device.profile))
        refusedDevice, refused = self.startConnection()
        self.call(ConnectCompleteRequest(AccountID="alice", Result=self.alice.result(refused, "Refused")))

    def transferAll(self, maxEntries=None):
        items, pageKey = [], None
        while True:
            response = self.call(TransferRequest(SearchConstraints=SearchConstraints(
                MaxEntries=maxEntries, PageKey=pageKey)))
            self.assertEqual(response.Status, 201)
            items.extend(response.DataItems)
            pageKey = response.PageKey
            if pageKey is None:
                return items

    def test_transfer(self):
        """
        Transfer returns every record in order with its chain fields, paging
        by the decimal sequence number.
        """
        items = self.transferAll(maxEntries=3)
        head = self.portal.store.head()
        self.assertEqual([i.Sequence for i in items], list(range(1, head.sequence + 1)))
        self.assertEqual(items[-1].Hash, head.hash.hex())
        self.assertEqual(items[0].Previous, "0" * 64)
        partial = self.call(TransferRequest(SearchConstraints=SearchConstraints(PageKey="4")))
        self.assertEqual(partial.DataItems[0].Sequence, 5)

    def test_badPageKey(self):
        """
        A Transfer PageKey that is not a decimal number is 400.
        """
        for key in ("x", "-1", "١"):
            response = self.call(TransferRequest(SearchConstraints=SearchConstraints(PageKey=key)))
            self.assertEqual(response.Status, 400, key)

    def test_replayReproducesCheckpoint(self):
        """
        Replaying the transferred records into a second portal gives the same
        checkpoint, the same accounts, entries, pending requests and results
        (but no zone credentials), and a chain that verifies.
        """
        second = PortalFixture(self)
        for item in self.transferAll(maxEntries=2):
            second.service.replicate(item)
        self.assertEqual(second.store.head(), self.portal.store.head())
        self.assertEqual(second.service.dispatch(StatusRequest()).CheckpointValue,
                         self.call(StatusRequest()).CheckpointValue)
        second.store.verifyChain()
        mine, theirs = self.portal.tables(), second.tables()
        self.assertEqual(mine, theirs)
        self.assertEqual(
            second.service.dispatch(GetRequest(Account="alice", Multiple=True)),
            self.call(GetRequest(Account="alice", Multiple=True)),
        )

    def test_replayRefusesBrokenChain(self):
        """
        A record out of order or with a hash that does not recompute is
        refused with ChainError, and the replica keeps what it had.
        """
        items = self.transferAll()
        second = PortalFixture(self)
        self.assertRaises(ChainError, second.service.replicate, items[1])
        second.service.replicate(items[0])
        bad = attrs.evolve(items[1], Hash="00" * 32)
        self.assertRaises(ChainError, second.service.replicate, bad)
        self.assertEqual(second.store.head().sequence, 1)

    def test_replayChecksSignatures(self):
        """
        A primary that logged a forged entry (hashes made to chain) is not
        followed: the replica checks signatures too.
        """
        from pzh.portal.store import recordHash

        items = self.transferAll()
        second = PortalFixture(self)
        for item in items[:2]:
            second.service.replicate(item)
        forgedProfile = self.alice.profileAt(T0 + hours(5), signer=self.alice.admin.keys.signature)
        time = encodeDateTime(items[2].Published)
        previous = bytes.fromhex(items[1].Hash)
        forged = DataItem(
            Sequence=3, Published=items[2].Published, Entry=forgedProfile, Previous=items[1].Hash,
            Hash=recordHash(previous, 3, time, forgedProfile.toJSON()).hex(),
        )
        self.assertRaises(MeshSignatureError, second.service.replicate, forged)
        self.assertEqual(second.store.head().sequence, 2)

    def test_replayNeedsChainFields(self):
        """
        A DataItem without its chain fields, or whose entry is not a log
        entry, cannot be replayed.
        """
        [item] = self.call(GetRequest(Identifier=self.device.udf)).DataItems
        second = PortalFixture(self)
        self.assertRaises(MeshFormatError, second.service.replicate, item)
        self.assertRaises(MeshFormatError, second.service.replicate,
                          attrs.evolve(item, Entry=HelloRequest(), Previous="00", Hash="00"))
