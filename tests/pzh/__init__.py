"""
Tests for pzh.
"""
