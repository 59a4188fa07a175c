"""
The personal zone hub (PZH): certificate authority, router and admin side
of a zone.
"""
