"""
Dropin for C{twistd pzh}; kept tiny so C{twistd --help} stays fast.
"""

from twisted.application.service import ServiceMaker

pzh = ServiceMaker(
    "Personal zone hub", "pzh.tap", "A personal zone hub (CA, router, admin web side).", "pzh"
)
