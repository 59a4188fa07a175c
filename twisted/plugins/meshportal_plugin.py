"""
Dropin for C{twistd meshportal}; kept tiny so C{twistd --help} stays fast.
"""

from twisted.application.service import ServiceMaker

meshportal = ServiceMaker(
    "Mesh portal", "pzh.portal.tap", "A Mathematical Mesh portal (accounts, profiles, devices).",
    "meshportal",
)
