# -*- test-case-name: tests.pz.sync.test_conflicts -*-
"""
The conflict rule of the webinos Synchronisation specification.

Two versions of one item conflict when a device sends an update whose base
(the version it last agreed with the hub) is not the hub's current version,
and the update is not that version either: both sides changed the item
since they last agreed.  The hub decides, as the zone's central authority:

    "the time stamp should be compared to find the last entity that updated
    the contents ... A margin of time stamp to compare should be +/-5 sec of
    the current time on the device receiving.  If timestamp exceeds the
    limit then the version of the PZH should be used."

So the later version wins when its time lies within 5 s of the hub's clock;
a later time further away (an old offline edit, or a clock that is wrong)
cannot be trusted and the hub's current version wins.  A tie goes to the
hub.  Either way the loser is kept as a conflict copy, never dropped.

For example, with the hub's clock at 12:00:10: the hub's current version
was written at 12:00:01 by device A, and device B's update says 12:00:07.
B's time is later and 3 s from the hub's clock: B wins, and the hub keeps
A's version under C{conflicts/}.  Had B's update said 11:40:00 (made while
B was offline twenty minutes ago), the hub's version would win, and B
would keep its own copy under C{conflicts/} when the winner reaches it.
"""

__all__ = ["MARGIN", "updateWins"]

#: Seconds around the receiver's clock within which a later time is trusted.
MARGIN = 5.0


def updateWins(current, update, now: float) -> bool:
    """
    Does a conflicting update beat the hub's current version?

    @param current: the hub's current L{Version}, or C{None} when it has no
        record of the item (then there is nothing to conflict with).
    @param update: the update's L{Version}.
    @param now: the hub's clock.
    """
    if current is None:
        return True
    return update.time > current.time and abs(update.time - now) <= MARGIN
