"""Renderers: a Trace in, text out. They never compute; one module per format.

    registry   the formats: name → renderer, -o extensions, text or binary, which command
    output     where output goes (stdout or -o FILE; text, bytes or a rich console)
    layout     a step's 2-D slices, a cell's text, a label on one line
    drawing    heatmaps' and plots' masked cells, colour scales and pooling

and one module per format (table, json, csv, markdown, npz; check's and explain's; heatmap and
plot, the drawings); the torch script is an exporter, attncli.export. Importing this package
imports none of them.
"""

from __future__ import annotations

import importlib

#: Names still imported from ``attncli.render`` by modules outside it, and where each lives
#: now; looked up on first use (PEP 562), so that this package stays free to import.
_MOVED = {
    "ExplainFormat": "attncli.render.registry",
    "IMAGE_EXTENSIONS": "attncli.render.registry",
    "masked": "attncli.render.drawing",
    "printable": "attncli.render.layout",
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module 'attncli.render' has no attribute {name!r}")
    return getattr(importlib.import_module(_MOVED[name]), name)
