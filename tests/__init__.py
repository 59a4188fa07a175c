"""
Tests for the personal zone framework.
"""
