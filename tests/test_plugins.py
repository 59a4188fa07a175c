"""
The twistd dropins load: a plugin that fails to import silently becomes
"Unknown command", so this checks every tapname is really there.
"""

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase

import twisted.plugins


class PluginTests(SynchronousTestCase):
    """
    C{twistd pzh}, C{twistd pzp} and C{twistd meshportal} exist.
    """

    def test_tapnames(self):
        """
        getPlugins(IServiceMaker) lists pzh, pzp and meshportal, each naming a module
        that imports and offers Options and makeService.
        """
        makers = {m.tapname: m for m in getPlugins(IServiceMaker, twisted.plugins)}
        for name in ("pzh", "pzp", "meshportal"):
            self.assertIn(name, makers)
            self.assertTrue(callable(makers[name].makeService))
            self.assertIsNotNone(makers[name].options)
