"""
Tests for L{pz.sync}.
"""
