"""
The example in C{docs/examples/mesh_profiles.py}, which C{docs/mesh-model.md}
walks through, runs and prints what the guide says it prints.
"""

import io
import runpy
from contextlib import redirect_stdout
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "mesh_profiles.py"


class ExampleTests(SynchronousTestCase):
    """
    The documented example is executed, so it cannot drift from the code.
    """

    def test_runs(self):
        """
        Running the example as a script shows each rule at work: the
        profile verifies, only the listed device reads the passwords, the
        forgery and the replay are refused with 401, the connection is
        accepted.
        """
        output = io.StringIO()
        with redirect_stdout(output):
            runpy.run_path(str(EXAMPLE), run_name="__main__")
        lines = output.getvalue().splitlines()
        self.assertRegex(lines[0], r"^profile [A-Z2-7]{5}(-[A-Z2-7]{5}){5}$")
        self.assertRegex(lines[1], r"^personal profile verified, \d+ bytes$")
        self.assertEqual(
            lines[2:],
            [
                "laptop reads: alice",
                "phone refused: 401",
                "forgery refused: 401",
                "replay refused: 401",
                "connection Accepted",
            ],
        )

    def test_guideShowsTheExample(self):
        """
        The copy of the example in C{docs/mesh-model.md} is the file the
        test above runs, so the guide shows code that works.
        """
        guide = (EXAMPLE.parents[1] / "mesh-model.md").read_text(encoding="utf-8")
        marker = "<!-- example: docs/examples/mesh_profiles.py -->\n```python\n"
        start = guide.index(marker) + len(marker)
        end = guide.index("```", start)
        self.assertEqual(guide[start:end], EXAMPLE.read_text(encoding="utf-8"))
