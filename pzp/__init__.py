"""
The personal zone proxy (PZP) that runs on every device of a zone.
"""
