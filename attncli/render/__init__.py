"""Renderers: a Trace in, text out. They never compute; one module per format.

    registry   the formats: name → renderer, -o extensions, text or binary, which command
    output     where output goes (stdout or -o FILE; text, bytes or a rich console)
    layout     a step's 2-D slices, a cell's text, a label on one line
    drawing    heatmaps' and plots' masked cells, colour scales and pooling

and one module per format (table, json, csv, markdown, npz; check's and explain's; heatmap and
plot, the drawings); the torch script is an exporter, attncli.export. Importing this package
imports none of them.
"""
