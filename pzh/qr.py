# -*- test-case-name: tests.pzh.test_adminpage -*-
"""
A pairing code as a QR code, for the admin page to show beside the code
(C{pzctl pair --qr} prints the same code in the terminal).
"""

import io

import segno

__all__ = ["qrSVG", "QR_TITLE"]

#: The SVG's title: what a screen reader says of the picture.
QR_TITLE = "QR code of the pairing code"


def qrSVG(text: str, scale: int = 4) -> str:
    """
    C{text} as a QR code in one SVG element, ready to put in an HTML page:
    no XML declaration, the SVG namespace declared (so that a browser's
    C{DOMParser} makes SVG elements of it), dark modules on a white
    background with the quiet zone, colours as presentation attributes (no
    C{style}, which the site's content policy would block).
    """
    out = io.BytesIO()
    segno.make(text).save(out, kind="svg", xmldecl=False, svgns=True, nl=False,
                          scale=scale, dark="#000", light="#fff", title=QR_TITLE)
    return out.getvalue().decode("utf-8")
