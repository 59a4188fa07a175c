"""
Tests for pz.
"""
