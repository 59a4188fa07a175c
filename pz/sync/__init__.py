"""
Synchronisation of the zone's items: every device holds them, only the changed chunks cross the wire.
"""
