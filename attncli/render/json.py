"""One JSON document: {"steps": {name: {formula, shape, axes, data}}, tokens, config, …}."""

from __future__ import annotations

import orjson

from attncli.render.output import Request
from attncli.trace import Trace


def render_json(trace: Trace, precision: int | None, indent: bool = False) -> str:
    """One document, compact unless ``indent``; full float precision unless ``precision`` is
    given; −∞ (masked scores) becomes null."""
    document = trace.to_dict(precision, arrays=True)  # orjson writes −inf and NaN as null
    option = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if indent else 0)
    return orjson.dumps(document, option=option).decode() + "\n"


def write_json(trace: Trace, request: Request) -> None:
    """compute's --format json: indented for a terminal, compact for a pipe or a file."""
    request.text(render_json(trace, request.precision, indent=request.pretty))
