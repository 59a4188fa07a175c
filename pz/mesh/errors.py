# -*- test-case-name: tests.mesh.test_schema -*-
"""
Errors raised by the Mesh data model.

Every error carries the status code that a portal should report for it (the
Reference draft's codes, section 7.2, plus 400 for a request it cannot parse)
and a sentence that names the problem, so that the portal can put the one in
C{Status} and the other in C{StatusDescription} without inspecting the
exception further. None of them carries a traceback across the wire.
"""

__all__ = [
    "MeshError",
    "MeshFormatError",
    "MeshKeyError",
    "MeshSignatureError",
    "MeshStaleProfileError",
    "MeshEncryptionError",
    "withArticle",
]


class MeshError(Exception):
    """
    Base of every error the Mesh data model raises.

    @ivar status: the status code a portal reports for this error.
    @ivar message: a sentence naming the problem, safe to send to a client.
    """

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MeshFormatError(MeshError, ValueError):
    """
    An object does not match its declared structure: an unknown field, a
    value of the wrong type, a missing required field, malformed JSON.

    Status 400: the draft has no code for it; a portal answers with a
    4xx failure as section 7.2 prescribes.
    """

    status = 400


class MeshKeyError(MeshFormatError):
    """
    A key cannot be used: unsupported type or curve, private parameters where
    only public ones belong, or a UDF that does not match the key.
    """


class MeshSignatureError(MeshError):
    """
    A signature rule of the Reference draft is broken: the signature does not
    verify, the signer is not a key the rule allows, or the signed object
    claims an identity its keys do not prove.

    Status 401, the draft's C{ClientUnauthorized}.
    """

    status = 401


class MeshStaleProfileError(MeshSignatureError):
    """
    A correctly signed profile is not newer than the one already held: a
    replay of an old profile, or an update that does not advance C{Updated}.
    """


class MeshEncryptionError(MeshError):
    """
    Encrypted data cannot be read with the key offered (the key is not one of
    the recipients, or the ciphertext was tampered with), or cannot be
    encrypted to the recipients asked for.

    Status 401: the party asking is not authorised to read it.
    """

    status = 401


def withArticle(noun: str) -> str:
    """
    Return C{noun} with "a" or "an" before it, for error messages that name
    types ("an ApplicationProfile", "a DeviceProfile").
    """
    return f"{'an' if noun[:1].upper() in 'AEIOU' else 'a'} {noun}"
