# -*- test-case-name: tests.pz.test_servicecache -*-
"""
The zone's service cache, the synced item C{items/servicecache.json}: what
every device of the zone offers, so that C{findServices} answers from the
local copy even when the hub is down.

The item is one JSON object keyed by device id, each value
C{{"services": [{"service", "version", "methods"}, ...]}} as the device
announced it (L{pz.zoneservice.ServiceRegistry.describe}).  Keying by
device makes each device's entry one chunk of the item (the JSON chunker
splits on top-level keys), so one device's change syncs alone.

This module checks announces, edits the cache as a value and reads it; the
hub writes the item and synchronisation carries it.
"""

import json
from typing import Optional

from pz.errors import ZoneError
from pz.zoneservice import NAME

__all__ = [
    "parseAnnounce",
    "withDevice",
    "withoutDevice",
    "decodeCache",
    "encodeCache",
    "findServices",
    "MAX_SERVICES",
    "MAX_METHODS",
    "MAX_VERSION",
]

#: The most services one device may announce.
MAX_SERVICES = 64
#: The most methods one service may announce.
MAX_METHODS = 64
#: The longest version string.
MAX_VERSION = 64


def _entry(obj) -> dict:
    if not isinstance(obj, dict) or set(obj) != {"service", "version", "methods"}:
        raise ZoneError("BAD_REQUEST", "each service must be {service, version, methods}")
    name, version, methods = obj["service"], obj["version"], obj["methods"]
    if not isinstance(name, str) or not NAME.match(name):
        raise ZoneError("BAD_REQUEST", f"service name {name!r} is not valid")
    if not isinstance(version, str) or len(version) > MAX_VERSION:
        raise ZoneError("BAD_REQUEST", f"service {name!r}: version must be a string of at most {MAX_VERSION}")
    if not isinstance(methods, list) or len(methods) > MAX_METHODS:
        raise ZoneError("BAD_REQUEST", f"service {name!r}: methods must be a list of at most {MAX_METHODS}")
    for method in methods:
        if not isinstance(method, str) or not NAME.match(method):
            raise ZoneError("BAD_REQUEST", f"service {name!r}: method name {method!r} is not valid")
    if len(set(methods)) != len(methods):
        raise ZoneError("BAD_REQUEST", f"service {name!r}: a method is named twice")
    return {"service": name, "version": version, "methods": sorted(methods)}


def parseAnnounce(payload) -> list:
    """
    Check a C{servicesAnnounce} payload's C{services}.

    @return: the services, each checked, sorted by name.
    @raise ZoneError: C{BAD_REQUEST} naming what is wrong.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("services"), list):
        raise ZoneError("BAD_REQUEST", "field 'services' must be a list")
    services = payload["services"]
    if len(services) > MAX_SERVICES:
        raise ZoneError("BAD_REQUEST", f"at most {MAX_SERVICES} services may be announced")
    checked = [_entry(service) for service in services]
    names = [service["service"] for service in checked]
    if len(set(names)) != len(names):
        raise ZoneError("BAD_REQUEST", "a service is named twice")
    return sorted(checked, key=lambda s: s["service"])


def withDevice(cache: dict, deviceId: str, services: list) -> dict:
    """
    The cache with C{deviceId}'s entry replaced by C{services} (already
    checked by L{parseAnnounce}); C{cache} itself is not changed.
    """
    updated = dict(cache)
    updated[deviceId] = {"services": services}
    return updated


def withoutDevice(cache: dict, deviceId: str) -> dict:
    """
    The cache without C{deviceId}'s entry (a revoked device's).
    """
    return {key: value for key, value in cache.items() if key != deviceId}


def decodeCache(data: Optional[bytes]) -> dict:
    """
    Read the item, keeping every device entry that is valid and dropping
    the others: one damaged entry must not hide the rest of the zone.

    @param data: the item's bytes, or L{None} if it does not exist.
    """
    if data is None:
        return {}
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(obj, dict):
        return {}
    cache = {}
    for deviceId, entry in obj.items():
        try:
            cache[deviceId] = {"services": parseAnnounce(entry)}
        except ZoneError:
            continue
    return cache


def encodeCache(cache: dict) -> bytes:
    """
    The item's bytes, keys sorted so equal caches are equal items, in the
    JSON items' canonical form (L{pz.sync.chunkers.JSONChunker}), so the
    copy synchronisation writes on a device is byte for byte the hub's.
    """
    return (json.dumps(cache, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def findServices(cache: dict, service: Optional[str] = None) -> list:
    """
    Every service in the cache, or those called C{service}, as
    C{{"device", "service", "version", "methods"}} sorted by device then
    service.
    """
    found = []
    for deviceId in sorted(cache):
        for entry in cache[deviceId]["services"]:
            if service is None or entry["service"] == service:
                found.append(dict(entry, device=deviceId))
    return found
