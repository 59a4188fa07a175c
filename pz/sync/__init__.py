"""Synchronisation of the zone's items between the hub and its devices."""
