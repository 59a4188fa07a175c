"""
Dropin for C{twistd pzp}; kept tiny so C{twistd --help} stays fast.
"""

from twisted.application.service import ServiceMaker

pzp = ServiceMaker(
    "Personal zone proxy", "pzp.tap", "A personal zone proxy for one device.", "pzp"
)
