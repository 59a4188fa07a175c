"""
Tests for pzp.
"""
