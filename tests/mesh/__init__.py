"""
Tests for L{pz.mesh}, the Mathematical Mesh data model: its JSON encoding,
keys, signature rules and encryption.
"""
