# -*- test-case-name: tests.pz.policy.test_itemfile -*-
"""
The zone's policy item as a file to list and edit: one code path for
C{pzctl policy show|add|remove} (L{pzp.policycommands}, on a device's or
a hub's data directory) and the hub's admin page (L{pzh.operations}).

L{PolicyFile} reads C{policies/policy.xml} from an items folder, checks
what a person asks for, splices the rule in or out with
L{pz.policy.edit} and writes the result back with the items folder's
atomic replace, so a change is never half written and syncs to every
device like any other edit.  Bad input and a policy that does not parse
are refused before anything is written.
"""

from typing import Callable, Optional

from pz.errors import ZoneError
from pz.policy.edit import addRule, removeRule, showRules
from pz.policy.item import POLICY

__all__ = ["PolicyFile"]


class PolicyFile:
    """
    The policy item of one items folder.

    @param tree: the device's or hub's L{pz.sync.items.ItemTree}.
    @param changed: told the item's path after each write, by a writer
        that lets its sync engine push the change at once (the running
        hub); None where the daemon's own scan finds it (C{pzctl}).
    """

    def __init__(self, tree, changed: Optional[Callable[[str], None]] = None) -> None:
        self._tree = tree
        self._changed = changed

    def read(self) -> bytes:
        """
        The policy's bytes as the file holds them.

        @raise ZoneError: C{BAD_REQUEST} when the file is missing; the
            items folder's own code when the folder is.
        """
        data = self._tree.read(POLICY)
        if data is None:
            raise ZoneError("BAD_REQUEST", f"{self._tree.resolve(POLICY)} is missing")
        return data

    def rules(self) -> list:
        """
        The policy's rules in document order, as L{pz.policy.edit.showRules}
        gives them.

        @raise ZoneError: as L{read}; C{POLICY_INVALID} naming the line and
            the problem when the policy does not parse.
        """
        return showRules(self.read())

    def add(self, effect, subject=None, service=None, method=None, first=False,
            item=None) -> str:
        """
        Add a rule (see L{pz.policy.edit.addRule}) and write the policy.

        @return: the new rule's id.
        @raise ZoneError: C{BAD_REQUEST} for a bad argument,
            C{POLICY_INVALID} when the policy does not parse; nothing is
            written then.
        """
        if not isinstance(first, bool):
            raise ZoneError("BAD_REQUEST", "first is true or false")
        data, ruleId = addRule(self.read(), effect, subject=subject, service=service,
                               method=method, first=first, item=item)
        self._write(data)
        return ruleId

    def remove(self, ruleId) -> None:
        """
        Remove the rule C{ruleId} and write the policy.

        @raise ZoneError: C{BAD_REQUEST} for no such rule, C{POLICY_INVALID}
            when the policy does not parse; nothing is written then.
        """
        if not isinstance(ruleId, str) or not ruleId:
            raise ZoneError("BAD_REQUEST", "a rule id is a non-empty string "
                                           "(pzctl policy show lists them)")
        self._write(removeRule(self.read(), ruleId))

    def _write(self, data: bytes) -> None:
        self._tree.write(POLICY, data)
        if self._changed is not None:
            self._changed(POLICY)
