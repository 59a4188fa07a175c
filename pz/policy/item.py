# -*- test-case-name: tests.pzp.test_policy -*-
"""
The zone's policy as the items folder holds it, in force wherever a
decision is made: on a device before it serves a call (L{pzp.policy}), on
the hub before a friend zone's call comes in (L{pzh.zonelink}).

L{ItemPolicy} holds a L{PolicyDecisionPoint} loaded from the synced item
C{policies/policy.xml}.  It looks at the file before each decision (one
C{stat}) and reads it again when it changed, whoever changed it: a sync,
C{pzctl policy} or a person with an editor; a changed policy is so in force
from the next decision on, without a restart.  A policy that does not parse
is refused: the sync engine does not install one from elsewhere
(L{checkPolicy} is its validator), and one written any other way is logged
while the previous policy stays in force.
"""

import os

from twisted.logger import Logger

from pz.errors import ZoneError
from pz.policy.decide import PolicyDecisionPoint
from pz.policy.model import PolicyError, Request
from pz.policy.parse import parsePolicy
from pz.sync.defaults import POLICY as DEFAULT_POLICY

__all__ = ["POLICY", "ItemPolicy", "checkPolicy"]

#: The policy among the zone's items.
POLICY = "policies/policy.xml"


def checkPolicy(path: str, data: bytes) -> None:
    """
    The sync engine's validator: a policy that does not parse is not
    installed.

    @raise ZoneError: C{SYNC_BAD_ITEM}, naming the line and the problem.
    """
    try:
        parsePolicy(data)
    except PolicyError as e:
        raise ZoneError("SYNC_BAD_ITEM", f"{path}: {e.message}") from None


class ItemPolicy:
    """
    The policy in force here, read again whenever its file changes.
    """

    _log = Logger()

    def __init__(self, tree) -> None:
        """
        @param tree: the device's or hub's L{pz.sync.items.ItemTree}.
        """
        self._tree = tree
        # Looked at before every call, so by name, without the tree's
        # checks for links on the way: those run when the file is read.
        self._file = os.path.join(tree.root, *POLICY.split("/"))
        # Until the item is read: the zone's default policy, what every
        # zone starts with.
        self._pdp = PolicyDecisionPoint(parsePolicy(DEFAULT_POLICY.encode("utf-8")))
        self._signature = None
        self._generation = 0

    @property
    def generation(self) -> int:
        """
        A number that changes whenever another policy comes into force: a
        decision remembered with it holds while it stays the same.
        """
        self.refresh()
        return self._generation

    def refresh(self) -> None:
        """
        Read the policy again if its file changed since it was last read;
        one that does not parse is logged and the previous stays in force.
        """
        try:
            st = os.lstat(self._file)
            signature = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except OSError:
            signature = None
        if signature == self._signature:
            return
        self._signature = signature
        if signature is None:
            self._log.warn("policy {path} is missing: the previous policy stays in force",
                           path=POLICY)
            return
        try:
            data = self._tree.read(POLICY)
            self._pdp.load(data if data is not None else b"")
        except (PolicyError, ZoneError, OSError) as e:
            self._log.warn("{path} refused, the previous policy stays in force: {error}",
                           path=POLICY, error=getattr(e, "message", None) or str(e))
            return
        self._generation += 1
        self._log.info("{path} loaded: in force from the next call", path=POLICY)

    def decide(self, request: Request):
        """
        The decision on C{request} under the policy in force now.
        """
        self.refresh()
        return self._pdp.decide(request)

    def rule(self, ruleId: str):
        """
        The rule C{ruleId} of the policy in force, or None.
        """
        policy = self._pdp.policy
        for _, rule in (policy.rules() if policy is not None else ()):
            if rule.ruleId == ruleId:
                return rule
        return None
