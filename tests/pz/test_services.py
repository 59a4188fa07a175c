"""
Tests for L{pz.services}: the one service that closes a process's store.
"""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

import pzh.portal.tap
import pzh.tap
from pz.services import StoreService


class _Recorder:
    """
    A store, drain and worker in one, recording what was done to it.
    """

    def __init__(self) -> None:
        self.calls = []
        self.drained = None

    def close(self) -> None:
        self.calls.append("close")

    def drain(self):
        self.calls.append("drain")
        return self.drained

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> None:
        self.calls.append("stop")


class StoreServiceTests(SynchronousTestCase):
    """
    L{StoreService} starts its workers, and on stop drains, closes the
    store, then stops its workers.
    """

    def test_order(self):
        """
        Stopping waits for the drain's L{Deferred} before the store closes
        and the workers stop.
        """
        r = _Recorder()
        r.drained = Deferred()
        service = StoreService(r, drain=r.drain, workers=[r])
        service.startService()
        self.assertEqual(r.calls, ["start"])
        stopped = service.stopService()
        self.assertEqual(r.calls, ["start", "drain"])
        self.assertNoResult(stopped)
        r.drained.callback(None)
        self.successResultOf(stopped)
        self.assertEqual(r.calls, ["start", "drain", "close", "stop"])
        self.assertFalse(service.running)

    def test_failedDrain(self):
        """
        A drain that fails still leaves the store closed.
        """
        r = _Recorder()
        r.drained = Deferred()
        service = StoreService(r, drain=r.drain)
        service.startService()
        stopped = service.stopService()
        r.drained.errback(RuntimeError("boom"))
        self.successResultOf(stopped)
        self.assertEqual(r.calls, ["drain", "close"])

    def test_noDrain(self):
        """
        Without a drain or workers, stopping closes the store at once.
        """
        r = _Recorder()
        service = StoreService(r)
        service.startService()
        self.successResultOf(service.stopService())
        self.assertEqual(r.calls, ["close"])

    def test_sharedByHubAndPortal(self):
        """
        The hub and the portal use this one service and this one endpoint
        helper, not copies of their own.
        """
        import pz.endpoints

        for module in (pzh.tap, pzh.portal.tap):
            self.assertIs(module.StoreService, StoreService, module.__name__)
            self.assertIs(module.tcpEndpoint, pz.endpoints.tcpEndpoint, module.__name__)
        self.assertFalse(hasattr(pzh.tap, "_StoreService"))
        self.assertFalse(hasattr(pzh.portal.tap, "PortalStoreService"))
