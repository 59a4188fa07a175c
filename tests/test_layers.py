"""
The project's layers hold: the core (C{pz/}) imports neither end (C{pzh/},
C{pzp/}), and C{bench/}'s modules import each other without a circle.
Imports are read from the source (every C{import}, at module level or
inside a function), so a lazy import cannot hide a dependency.
"""

import ast
import os

from twisted.trial.unittest import SynchronousTestCase

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: The packages the core must not import.
ENDS = ("pzh", "pzp")


def _moduleName(root: str, path: str) -> str:
    relative = os.path.relpath(path, root)[: -len(".py")]
    parts = relative.split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(root: str, path: str):
    """
    Yield C{(line, module)} for every import in the file C{path} (a module
    of a package under C{root}), relative imports resolved.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    name = _moduleName(root, path)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def pythonFiles(root: str, package: str):
    """
    Every C{.py} file of C{package} (a folder under C{root}), sorted.
    """
    found = []
    for folder, dirs, files in os.walk(os.path.join(root, package)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        found += [os.path.join(folder, f) for f in sorted(files) if f.endswith(".py")]
    return found


def endImports(root: str, package: str = "pz", ends=ENDS) -> list:
    """
    C{FILE:LINE: import MODULE} for every import of one of C{ends} in
    C{package}.
    """
    found = []
    for path in pythonFiles(root, package):
        for line, module in imports(root, path):
            if module.split(".")[0] in ends:
                where = os.path.relpath(path, root)
                entry = f"{where}:{line}: import {module.split('.')[0]}"
                if entry not in found:
                    found.append(entry)
    return sorted(found)


def importCircles(root: str, package: str) -> list:
    """
    The import circles among C{package}'s own modules, each as a list of
    module names from one module back to it.
    """
    modules = {_moduleName(root, p): p for p in pythonFiles(root, package)}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for _, module in imports(root, path):
            if module in modules and module != name:
                targets.add(module)
        edges[name] = sorted(targets)
    circles = []
    for start in sorted(modules):
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, trail = stack.pop()
            for target in edges[node]:
                if target == start:
                    circle = trail + [start]
                    if sorted(circle[:-1]) not in [sorted(c[:-1]) for c in circles]:
                        circles.append(circle)
                elif target not in seen and target > start:
                    seen.add(target)
                    stack.append((target, trail + [target]))
    return circles



def _writeTree(root: str, files: dict) -> None:
    """
    Write C{files} (a path with C{/} to its text) under C{root}, whose
    folders exist.
    """
    for name, text in files.items():
        with open(os.path.join(root, *name.split("/")), "w", encoding="utf-8") as f:
            f.write(text)

class CoreLayerTests(SynchronousTestCase):
    """
    Nothing in C{pz/} imports C{pzh} or C{pzp}.
    """

    def test_coreImportsNoEnd(self):
        """
        No file under C{pz/} imports C{pzh} or C{pzp}, not even inside a
        function.
        """
        self.assertEqual(endImports(_ROOT), [])

    def test_reported(self):
        """
        An import of an end, at module level, inside a function, absolute
        or as C{from pzh ... import}, is reported with its file and line.
        """
        root = self.mktemp()
        os.makedirs(os.path.join(root, "pz", "inner"))
        files = {
            "pz/__init__.py": '"""core"""\n',
            "pz/ok.py": "import os\nfrom pz import errors\nimport pzhx\n",
            "pz/top.py": "import pzh.hub\n",
            "pz/inner/__init__.py": "",
            "pz/inner/lazy.py": "def f():\n    from pzp.zonedir import ZoneDirectory\n",
            "pz/inner/both.py": "from pzh import store\n\n\nimport pzp\n",
        }
        _writeTree(root, files)
        self.assertEqual(endImports(root), [
            "pz/inner/both.py:1: import pzh",
            "pz/inner/both.py:4: import pzp",
            "pz/inner/lazy.py:2: import pzp",
            "pz/top.py:1: import pzh",
        ])


class BenchLayerTests(SynchronousTestCase):
    """
    C{bench/}'s modules import each other without a circle.
    """

    def test_noCircle(self):
        """
        No module of C{bench/} imports one that (directly or not) imports
        it back.
        """
        self.assertEqual(importCircles(_ROOT, "bench"), [])

    def test_circleFound(self):
        """
        A circle through a lazy import, and one through a relative import,
        are both found.
        """
        root = self.mktemp()
        os.makedirs(os.path.join(root, "b"))
        files = {
            "b/__init__.py": "",
            "b/__main__.py": "def main():\n    from b.part import x\n",
            "b/part.py": "import b.__main__ as top\nx = 1\n",
            "b/one.py": "from . import two\n",
            "b/two.py": "from b.three import y\n",
            "b/three.py": "def f():\n    from b import one\ny = 2\n",
        }
        _writeTree(root, files)
        self.assertEqual(importCircles(root, "b"), [
            ["b.__main__", "b.part", "b.__main__"],
            ["b.one", "b.two", "b.three", "b.one"],
        ])
