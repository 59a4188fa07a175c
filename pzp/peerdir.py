# -*- test-case-name: tests.pzp.test_peerdir -*-
"""
The peer directory: which devices of the zone are connected, from the
hub's C{pzpUpdate}s.

An update is either the whole list (C{devices}, possibly in pages numbered
C{page} of C{pages}) or what changed since the last one (C{joined},
C{left}).  A list in pages replaces what is known only once its last page
came.

The Directory machine::

    Complete --firstPage / nextPage--> Paging (the pages so far)
    Paging --nextPage--> Paging; --firstPage--> Paging, starting over
    Paging, Complete --lastPage--> Complete (known = pages so far + this one)
    Paging, Complete --wholeList / cleared--> Complete
    Paging, Complete --delta--> itself

L{PeerDirectory} owns it: it sorts each update into one of those inputs.
"""

from typing import Protocol

from automat import TypeMachineBuilder, pep614
from zope.interface import implementer

from pzp.seams import IPeerDirectory

__all__ = ["PeerDirectory", "DirectoryMachine", "DirectoryInputs", "DirectoryCore"]


def _valid(entries) -> dict:
    """
    The entries with a string C{id}, by id; anything else is ignored.
    """
    return {e["id"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)}


class DirectoryInputs(Protocol):
    def firstPage(self, entries: dict) -> None:
        "The first page of a whole list in several."

    def nextPage(self, entries: dict) -> None:
        "A page of a whole list, neither the first nor the last."

    def lastPage(self, entries: dict) -> None:
        "The last page of a whole list in several."

    def wholeList(self, entries: dict) -> None:
        "A whole list in one page."

    def delta(self, joined: dict, left: list) -> None:
        "Devices that joined and left since the last update."

    def cleared(self) -> None:
        "The hub link is gone: nobody is known to be connected."

    def state(self) -> str:
        "The name of the current state."


class DirectoryCore:
    """
    The Directory machine's dependencies and what it knows.

    @ivar known: device id -> the hub's entry for it.
    """

    def __init__(self) -> None:
        self.known: dict = {}


def _collect(inputs: DirectoryInputs, core: DirectoryCore, entries: dict) -> dict:
    return dict(entries)


def _buildDirectory():
    builder = TypeMachineBuilder(DirectoryInputs, DirectoryCore)
    Complete = builder.state("Complete")
    Paging = builder.state("Paging", _collect)

    Complete.upon(DirectoryInputs.state).loop().returns("Complete")
    Paging.upon(DirectoryInputs.state, nodata=True).loop().returns("Paging")

    Complete.upon(DirectoryInputs.firstPage).to(Paging).returns(None)
    Complete.upon(DirectoryInputs.nextPage).to(Paging).returns(None)

    @pep614(Paging.upon(DirectoryInputs.firstPage).loop())
    def restart(inputs: DirectoryInputs, core: DirectoryCore, pages: dict,
                entries: dict) -> None:
        pages.clear()
        pages.update(entries)

    @pep614(Paging.upon(DirectoryInputs.nextPage).loop())
    def addPage(inputs: DirectoryInputs, core: DirectoryCore, pages: dict,
                entries: dict) -> None:
        pages.update(entries)

    @pep614(Paging.upon(DirectoryInputs.lastPage).to(Complete))
    def commit(inputs: DirectoryInputs, core: DirectoryCore, pages: dict,
               entries: dict) -> None:
        core.known = {**pages, **entries}

    @pep614(Complete.upon(DirectoryInputs.lastPage).loop())
    @pep614(Complete.upon(DirectoryInputs.wholeList).loop())
    def replace(inputs: DirectoryInputs, core: DirectoryCore, entries: dict) -> None:
        core.known = dict(entries)

    @pep614(Paging.upon(DirectoryInputs.wholeList).to(Complete))
    def replaceAll(inputs: DirectoryInputs, core: DirectoryCore, pages: dict,
                   entries: dict) -> None:
        core.known = dict(entries)

    @pep614(Complete.upon(DirectoryInputs.delta).loop())
    @pep614(Paging.upon(DirectoryInputs.delta, nodata=True).loop())
    def applyDelta(inputs: DirectoryInputs, core: DirectoryCore, joined: dict,
                   left: list) -> None:
        for deviceId in left:
            core.known.pop(deviceId, None)
        core.known.update(joined)

    @pep614(Complete.upon(DirectoryInputs.cleared).loop())
    def clear(inputs: DirectoryInputs, core: DirectoryCore) -> None:
        core.known = {}

    @pep614(Paging.upon(DirectoryInputs.cleared).to(Complete))
    def clearAll(inputs: DirectoryInputs, core: DirectoryCore, pages: dict) -> None:
        core.known = {}

    return builder.build()


DirectoryMachine = _buildDirectory()


@implementer(IPeerDirectory)
class PeerDirectory:
    """
    What the hub said of the zone's connected devices.
    """

    def __init__(self) -> None:
        self._core = DirectoryCore()
        self._machine = DirectoryMachine(self._core)

    def update(self, payload: dict) -> None:
        """
        Apply the hub's C{pzpUpdate} (its lists already checked to be lists).
        """
        if "devices" in payload:
            entries = _valid(payload["devices"])
            page, pages = payload.get("page", 1), payload.get("pages", 1)
            if page == pages:
                (self._machine.wholeList if page == 1 else self._machine.lastPage)(entries)
            elif page == 1:
                self._machine.firstPage(entries)
            else:
                self._machine.nextPage(entries)
            return
        left = [d for d in payload.get("left", []) if isinstance(d, str)]
        self._machine.delta(_valid(payload.get("joined", [])), left)

    def clear(self) -> None:
        self._machine.cleared()

    def peers(self) -> dict:
        return self._core.known
