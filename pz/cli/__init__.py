"""
The command line tools (C{pzctl}).
"""
