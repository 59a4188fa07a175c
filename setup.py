"""
Thin shim: the metadata lives in setup.cfg.  The Twisted dropins under
twisted/plugins/ are shipped as a plain package directory (it has no
__init__.py on purpose, so it stays a namespace Twisted can merge).
"""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["pz", "pz.*", "pzh", "pzh.*", "pzp", "pzp.*"]) + ["twisted.plugins"])
