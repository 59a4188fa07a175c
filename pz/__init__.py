"""
Shared core of the personal zone: identities, certificates, fingerprints,
the wire format and storage that both the hub and the proxies speak.
"""
