"""A label on one line (printable), and a cell's text (number)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from attncli.render.layout import number, printable


@pytest.mark.parametrize("text, expected", [
    ("two\nlines", "two\\nlines"),
    ("\x1b[31mred", "\\x1b[31mred"),  # an escape sequence stays inert text
    ("a\tb", "a\\tb"),
    ("\r\x00\x7f", "\\r\\x00\\x7f"),
    ("line\u2028sep", "line\\u2028sep"),  # Unicode's own line separator
    ("nbsp\xa0", "nbsp\\xa0"),
    ("tag\U000e0001", "tag\\U000e0001"),
    ("back\\slash 'quotes\"", "back\\slash 'quotes\""),  # printable: as it is
    ("日本 Ünïcode", "日本 Ünïcode"),
    ("", ""),
])
def test_printable_escapes_only_what_is_not_printable(text, expected):
    assert printable(text) == expected


def test_printable_is_repr_without_its_quotes_for_every_character():
    """The command line's messages escaped each character that is not printable as
    repr(ch)[1:-1], the labels with the unicode_escape codec: the same text for every code
    point, so both use printable and neither output changes."""
    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        assert printable(ch) == (ch if ch.isprintable() else repr(ch)[1:-1]), hex(code)


@pytest.mark.parametrize("value, precision, expected", [
    (0.40625, 4, "0.4062"),  # round half to even, as format() does: 0.40625 is exact
    (-0.00001, 2, "0.00"),  # no "-0.00"
    (-np.inf, 4, "−∞"), (np.inf, None, "∞"), (np.nan, 2, "NaN"),
    (0.1 + 0.2, None, "0.30000000000000004"),  # every digit: reads back as the same float
])
def test_number(value, precision, expected):
    assert number(value, precision) == expected
