"""JSON problems: one object whose keys are those of :class:`attncli.problem.Problem`."""

from __future__ import annotations

from typing import Any

from attncli.errors import InputError
from attncli.io import _name, open_text


def read_json_value(path: str, decimals: bool = False) -> Any:
    """The parsed JSON document of ``path`` (``-``: stdin). With ``decimals``, numbers with a
    fraction are ``decimal.Decimal`` so that 0.8610 keeps its four written decimals.

    Raises: InputError with the line and column of a syntax error.
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
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            if "surrogate" in str(exc):  # text no output can encode: refuse it here
                raise InputError(f"{_name(path)}: invalid JSON string: {exc}") from None
    import decimal
    import json

    try:
        return json.loads(text, parse_float=decimal.Decimal if decimals else None)
    except json.JSONDecodeError as exc:
        raise InputError(f"{_name(path)}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}") from None
    except RecursionError:
        raise InputError(f"{_name(path)}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"{_name(path)}: unreadable JSON number: {exc}") from None


def read_json(path: str) -> dict[str, Any]:
    """A JSON problem object. Raises: InputError when the document is not an object."""
    value = read_json_value(path)
    if not isinstance(value, dict):
        raise InputError(f"{_name(path)}: expected a JSON object with keys such as \"x\", "
                         f"got a {type(value).__name__}")
    return value
