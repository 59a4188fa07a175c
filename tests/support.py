"""
What mutating tests share: the same content under another JSON type.  The
clock and frame helpers every protocol test needs are in L{pz.testing}.
"""

__all__ = ["changeType"]


def changeType(value):
    """
    The same content under another JSON type: what a mutating test puts in
    a field to see a type check refuse it.
    """
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    return str(value)
