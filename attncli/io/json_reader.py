"""JSON problems: one object whose keys are those of :class:`attncli.problem.Problem`."""

from __future__ import annotations

import re
from typing import Any

from attncli.errors import InputError
from attncli.io import _name, open_text

#: A JSON string followed by a colon: an object's key (or, rarely, the end of one string and
#: the start of the next; a false match only costs a second parse).
_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')


def read_json_value(path: str, decimals: bool = False) -> Any:
    """The parsed JSON document of ``path`` (``-``: stdin). With ``decimals``, numbers with a
    fraction are ``decimal.Decimal`` so that 0.8610 keeps its four written decimals.

    Raises: InputError with the line and column of a syntax error (on standard input that is
    no JSON object or array, saying that stdin is read as JSON: a CSV must be a file).
    """
    text = open_text(path)
    if not text.strip():
        raise InputError(f"{_name(path)}: empty file, expected a JSON object")
    if not decimals:
        # orjson reads large arrays several times faster (bench/json_io.py); what it refuses
        # (NaN literals, integers past 64 bits, syntax errors) goes to the standard parser,
        # which either reads it (the problem checks then name the key) or says where it fails.
        import orjson

        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if "surrogate" in str(exc):  # text no output can encode: refuse it here
                raise InputError(f"{_name(path)}: invalid JSON string: {exc}") from None
        else:
            # orjson keeps the last of duplicate keys silently; one scan of the text (fast:
            # numbers hold no quotes) finds every key, and only a key written twice somewhere
            # sends the text to the standard parser, which knows whether in the same object
            keys = _KEY.findall(text)
            if len(keys) == len(set(keys)):
                return value
    import decimal
    import json

    try:
        return json.loads(text, parse_float=decimal.Decimal if decimals else None,
                          object_pairs_hook=lambda pairs: _unique(pairs, path))
    except json.JSONDecodeError as exc:
        raise InputError(f"{_name(path)}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}{_stdin_hint(path, text)}") from None
    except RecursionError:
        raise InputError(f"{_name(path)}: JSON nested too deeply") from None
    except (ValueError, ArithmeticError) as exc:  # an integer of more than 4300 digits, an
        raise InputError(f"{_name(path)}: unreadable JSON number: "  # exponent past Decimal's
                         f"{exc or type(exc).__name__}") from None


def _stdin_hint(path: str, text: str) -> str:
    """For standard input that is not a JSON object or array (a CSV, most likely): it is read
    as JSON only, since it has no name whose extension could say otherwise."""
    if path != "-" or text.lstrip()[:1] in ("{", "["):
        return ""
    return " (standard input is read as JSON; give a CSV as a file named *.csv)"


def _unique(pairs: list[tuple[str, Any]], path: str) -> dict[str, Any]:
    """One JSON object, refused when it gives a key twice (which would win is a guess)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise InputError(f"{_name(path)}: key {key!r} appears twice in one JSON object; "
                             "give each key once")
        seen.add(key)
    return dict(pairs)


def read_json(path: str) -> dict[str, Any]:
    """A JSON problem object. Raises: InputError when the document is not an object."""
    value = read_json_value(path)
    if not isinstance(value, dict):
        raise InputError(f"{_name(path)}: expected a JSON object with keys such as \"x\", "
                         f"got a {type(value).__name__}")
    return value
