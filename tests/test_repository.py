"""
What the repository itself carries: a licence matching its metadata, and
documentation that cites only what a reader can find.
"""

import configparser
import os

from twisted.trial.unittest import SynchronousTestCase

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

#: Texts that name files outside this repository (the project's private
#: notes); public drafts and webinos pages are cited by title instead.
#: Spelt in two parts so this file does not match itself.
_PRIVATE = ("shared" + "/", "seeds" + "/", "DESIGN" + " section", "DESIGN" + ".md")

_TEXT = (".py", ".md", ".sh", ".cfg", ".txt", ".toml")


def _repositoryTexts():
    for top in ("README.md", "Makefile", "setup.cfg", "setup.py", "docs", "pz", "pzh", "pzp",
                "twisted", "tests", "bench"):
        path = os.path.join(_ROOT, top)
        if os.path.isfile(path):
            yield path
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith(_TEXT):
                    yield os.path.join(dirpath, name)


class RepositoryTests(SynchronousTestCase):
    """
    The licence and the citations.
    """

    def test_license(self):
        """
        A LICENSE file holds the MIT licence that setup.cfg declares.
        """
        config = configparser.ConfigParser()
        config.read(os.path.join(_ROOT, "setup.cfg"))
        self.assertEqual(config["metadata"]["license"], "MIT")
        with open(os.path.join(_ROOT, "LICENSE"), encoding="utf-8") as f:
            text = f.read()
        self.assertTrue(text.startswith("MIT License"))
        self.assertIn("Permission is hereby granted, free of charge", text)

    def test_noPrivateCitations(self):
        """
        No document, comment or docstring cites the project's private notes.
        """
        found = []
        for path in _repositoryTexts():
            with open(path, encoding="utf-8", errors="replace") as f:
                for number, line in enumerate(f, 1):
                    if any(private in line for private in _PRIVATE):
                        found.append(f"{os.path.relpath(path, _ROOT)}:{number}: {line.strip()}")
        self.assertEqual(found, [])
