"""A corpus of bad inputs (tests/corpus/), each a real file run through the real CLI with its
arguments, and the exact stderr it gets: one line "attncli: error: …" and exit status 2 for a
rejection; status 0 and the right numbers for the inputs that must work (a BOM, Windows or old
Mac line endings, an unknown key that only warns).

The table CASES is the manifest. Paths in messages are the corpus-relative names: every case runs
with tests/corpus/ as the working folder. A message is exact, or a regular expression (matched
whole) where a library writes part of it (numpy's, Python's, orjson's and safetensors' own
words). Binary files come from tests/corpus/make_binary.py, whose outputs are committed;
test_make_binary_reproduces_the_committed_files keeps the two in step.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attncli.cli import app, main

CORPUS = Path(__file__).resolve().parent / "corpus"
ENV = {"COLUMNS": "200"}
X = [[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]]  # valid.json's, as everywhere
HELLO = ["Hello", "shiny", "sun"]
STEPS = ("queries, keys, normed_queries, normed_keys, rotated_queries, rotated_keys, values, "
         "scores, scaled_scores, capped_scores, bias, biased_scores, masked_scores, weights, "
         "sink_weights, dropped_weights, head_context, context, output")
E = "attncli: error: "


@dataclass(frozen=True)
class Case:
    """One corpus entry.

    file: the corpus file under test (None: the case is about options, or a missing file);
    args: the command line, "{file}" standing for ``file``; stderr: the whole of stderr (no
    trailing newline), a str matched exactly or an re.Pattern matched whole; status: the exit
    status; stdin: a corpus file fed as standard input; queries/tokens: for status 0, the JSON
    output's queries step (= x without projections) and token labels; entry: "app" runs the
    Typer app, "main" the console script, which also makes Click's usage errors one line.
    """

    file: str | None
    args: str
    stderr: str | re.Pattern
    status: int = 2
    stdin: str | None = None
    queries: list | None = None
    tokens: list | None = None
    entry: str = "app"


def rx(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def usage(message: str) -> re.Pattern:
    """A usage error of the console script; Click names the program as it was started
    ("attncli", "python -m attncli", or pytest's own name here)."""
    return rx(re.escape(E + message) + r" \(see: .*attncli compute --help\)")


CASES: dict[str, Case] = {
    # --- JSON: truncated, empty, not an object ---------------------------------------------
    "json-truncated": Case(
        "json-truncated.json", "compute {file}",
        E + "json-truncated.json: invalid JSON at line 1, column 38: Expecting ',' delimiter"),
    "json-truncated-in-a-string": Case(
        "json-truncated-string.json", "compute {file}",
        E + "json-truncated-string.json: invalid JSON at line 1, column 40: Unterminated string "
        "starting at"),
    "json-empty": Case("json-empty.json", "compute {file}",
                       E + "json-empty.json: empty file, expected a JSON object"),
    "json-whitespace-only": Case("json-whitespace.json", "compute {file}",
                                 E + "json-whitespace.json: empty file, expected a JSON object"),
    "json-array-not-object": Case(
        "json-not-an-object.json", "compute {file}",
        E + 'json-not-an-object.json: expected a JSON object with keys such as "x", got a list'),
    "json-trailing-garbage": Case(
        "json-trailing-garbage.json", "compute {file}",
        E + "json-trailing-garbage.json: invalid JSON at line 2, column 1: Extra data"),
    "json-directory": Case("a-directory.json", "compute {file}",
                           E + "a-directory.json: is a directory, not a file"),
    "json-missing-file": Case(None, "compute missing.json", E + "missing.json: no such file"),
    # --- JSON: wrong types -------------------------------------------------------------------
    "json-numbers-as-strings": Case(
        "json-strings-for-numbers.json", "compute {file}",
        E + "json-strings-for-numbers.json: x: numbers expected, found the string '0.5'; write "
        "numbers without quotes"),
    "json-object-for-array": Case(
        "json-object-for-array.json", "compute {file}",
        E + "json-object-for-array.json: x: numbers expected, found an object {…}"),
    "json-boolean-for-array": Case(
        "json-boolean-for-array.json", "compute {file}",
        E + "json-boolean-for-array.json: x: numbers expected, found true/false"),
    "json-booleans-among-numbers": Case(
        "json-booleans-among-numbers.json", "compute {file}",
        E + "json-booleans-among-numbers.json: x: numbers expected, found true/false among them"),
    "json-null-in-a-row": Case("json-null-in-row.json", "compute {file}",
                               E + "json-null-in-row.json: x: numbers expected, found null"),
    "json-scalar-for-matrix": Case(
        "json-scalar-for-matrix.json", "compute {file}",
        E + "json-scalar-for-matrix.json: x: expected 2-D or 3-D, got shape ()"),
    "json-ragged-rows": Case(
        "json-ragged-rows.json", "compute {file}",
        E + "json-ragged-rows.json: x: ragged array (rows of different lengths); every row must "
        "have the same length"),
    # --- JSON: NaN/Inf, empty arrays, numbers past every limit ------------------------------
    "json-nan-literal": Case(
        "json-nan-literal.json", "compute {file}",
        E + "json-nan-literal.json: x: nan at index [0, 1]; every value must be finite"),
    "json-infinity-literal": Case(
        "json-infinity-literal.json", "compute {file}",
        E + "json-infinity-literal.json: W_q: -inf at index [1, 0]; every value must be finite"),
    "json-number-overflows-to-inf": Case(
        "json-overflowing-number.json", "compute {file}",
        E + "json-overflowing-number.json: x: inf at index [1, 0]; every value must be finite"),
    "json-empty-array": Case("json-empty-array.json", "compute {file}",
                             E + "json-empty-array.json: x: empty array, shape (0,)"),
    "json-empty-rows": Case("json-empty-rows.json", "compute {file}",
                            E + "json-empty-rows.json: x: empty array, shape (3, 0)"),
    "json-integer-past-64-bits-works": Case(
        "json-integer-past-64-bits.json", "compute {file} --json --steps queries", "", status=0,
        queries=[[2.0**64, 0.0], [0.0, 1.0]]),
    "json-integer-past-float64": Case(
        "json-integer-past-float.json", "compute {file}",
        E + "json-integer-past-float.json: x: an integer too large for a 64-bit float (more "
        "than 1.8e308)"),
    "json-integer-of-5000-digits": Case(
        "json-integer-5000-digits.json", "compute {file}",
        rx(re.escape(E + "json-integer-5000-digits.json: unreadable JSON number: ") + r".*4300.*")),
    # --- JSON: structure ---------------------------------------------------------------------
    "json-deeply-nested": Case("json-deeply-nested.json", "compute {file}",
                               E + "json-deeply-nested.json: JSON nested too deeply"),
    "json-nested-65-deep": Case(
        "json-nested-65-deep.json", "compute {file}",
        E + "json-nested-65-deep.json: x: arrays nested more than 64 deep; expected rows of "
        "numbers"),
    "json-duplicate-key": Case(
        "json-duplicate-key.json", "compute {file}",
        E + "json-duplicate-key.json: key 'x' appears twice in one JSON object; give each key "
        "once"),
    "json-duplicate-config-key": Case(
        "json-duplicate-config-key.json", "compute {file}",
        E + "json-duplicate-config-key.json: key 'causal' appears twice in one JSON object; give "
        "each key once"),
    "json-unknown-key-warns": Case(
        "json-unknown-key-notes.json", "compute {file} --json --steps queries",
        "attncli: warning: json-unknown-key-notes.json: unknown key 'notes' ignored", status=0,
        queries=X),
    # a key that looks like a known one would leave it out of the run (K = x): an error
    "json-key-looks-like-w_q": Case(
        "json-unknown-key.json", "compute {file}",
        E + "json-unknown-key.json: unknown key 'W_query' looks like 'W_q'; write it 'W_q' (key "
        "names are exact)"),
    "json-key-in-lower-case": Case(
        "json-key-lower-case.json", "compute {file}",
        E + "json-key-lower-case.json: unknown key 'w_q' looks like 'W_q'; write it 'W_q' (key "
        "names are exact)"),
    "json-key-with-a-zero-for-o": Case(
        "json-key-w-zero.json", "compute {file}",
        E + "json-key-w-zero.json: unknown key 'W_0' looks like 'W_o'; write it 'W_o' (key names "
        "are exact)"),
    "json-multihead-attention-input-names": Case(
        "json-query-key-value.json", "compute {file}",
        E + "json-query-key-value.json: key 'query' is nn.MultiheadAttention's name of an input; "
        "attncli's are x (query), key_memory (key) and value_memory (value), or memory for keys "
        "and values from one sequence: write 'x'"),
    # keys clearly meant, once ignored with a warning: a run without W_o, unmasked, non-causal
    "json-key-w-out-looks-like-w_o": Case(
        "json-key-w-out.json", "compute {file}",
        E + "json-key-w-out.json: unknown key 'W_out' looks like 'W_o'; write it 'W_o' (key names "
        "are exact)"),
    "json-torch-attn-mask": Case(
        "json-attn-mask.json", "compute {file}",
        E + "json-attn-mask.json: key 'attn_mask' is torch's name; attncli's is 'mask', True (1) "
        "= may attend, as torch SDPA's boolean attn_mask (nn.MultiheadAttention's boolean "
        "attn_mask is the inverse, True = masked: negate it)"),
    "json-hugging-face-attention-mask": Case(
        "json-attention-mask.json", "compute {file}",
        E + "json-attention-mask.json: key 'attention_mask' is Hugging Face's name (1 = a real "
        "token, 0 = padding); attncli's is 'key_padding_mask', the inverse: True (1) = padding, "
        "ignored; write 1 − attention_mask"),
    "json-torch-is-causal": Case(
        "json-is-causal.json", "compute {file}",
        E + "json-is-causal.json: key 'is_causal' is torch's name of the option causal; options "
        "go in the file's config: write \"config\": {\"causal\": true} (or the flag --causal)"),
    "json-option-outside-config": Case(
        "json-option-outside-config.json", "compute {file}",
        E + "json-option-outside-config.json: key 'heads' is an option, not an input; options go "
        "in the file's config: write \"config\": {\"heads\": 3} (or the flag --heads 3)"),
    "json-fused-projection": Case(
        "json-fused-projection.json", "compute {file}",
        E + "json-fused-projection.json: key 'W_qkv' looks like a fused projection, W_q, W_k and "
        "W_v side by side; attncli takes them one by one: split it into W_q, W_k and W_v (blocks "
        "of columns in the in_out layout, of rows in nn.Linear's out_in), in that order"),
    "json-key-memory-transposed": Case(
        "json-key-memory-transposed.json", "compute {file}",
        E + "json-key-memory-transposed.json: key_memory: shape (2, 4) looks transposed: W_k "
        "(2, 2) takes rows of width 2, and key_memory has 2 rows of width 4; give key_memory one "
        "row per token, (seq, d)"),
    "json-left-padding-with-bottom-right": Case(
        "json-left-padding.json", "compute {file} --causal --causal-align bottom-right",
        E + "json-left-padding.json: key_padding_mask: in batch item 0, key 0 is padding but key "
        "2 after it is not; --causal-align bottom-right assumes right padding, the real keys "
        "first, as flash-attn does (its left padding is a separate offset, key_leftpad): put the "
        "padding at the end, or use --causal-align top-left"),
    "json-key-memory-without-value-memory": Case(
        "json-key-memory-alone.json", "compute {file}",
        E + "json-key-memory-alone.json: key_memory is given without value_memory: separate key "
        "and value sequences need both (or memory, the source of both)"),
    "json-some-projections-only": Case(
        "json-projections-partial.json", "compute {file}",
        E + "json-projections-partial.json: W_q given but not W_k or W_v: give W_k, W_v too "
        "(queries, keys and values each need their projection), or --no-project to use none "
        "(Q = K = V = x)"),
    "json-x-transposed": Case(
        "json-x-transposed.json", "compute {file}",
        E + "json-x-transposed.json: x: shape (2, 3) looks transposed: W_q (2, 2) takes rows of "
        "width 2, and x has 2 rows of width 3; give x one row per token, (seq, d)"),
    "json-x-missing": Case(
        "json-x-missing.json", "compute {file}",
        "attncli: error: no embeddings: json-x-missing.json has no 'x'; add it or give --x FILE"),
    "json-tokens-count": Case("json-tokens-count.json", "compute {file}",
                              E + "json-tokens-count.json: tokens: 2 labels for 3 rows of x"),
    "json-token-with-newline-stays-one-line": Case(
        "json-tokens-with-newline.json", "compute {file} --query three",
        E + "--query 'three': no such token or index; the queries are two\\nlines, one (or 0 … "
        "1, −1 for the last)"),
    "json-lone-surrogate": Case(
        "json-lone-surrogate.json", "compute {file}",
        rx(re.escape(E + "json-lone-surrogate.json: invalid JSON string: ") + r".*surrogate.*")),
    # --- JSON: masks, weights, heads, options in the file -------------------------------------
    "json-mask-wrong-shape": Case(
        "json-mask-wrong-shape.json", "compute {file}",
        E + "json-mask-wrong-shape.json: mask: expected (seq_q, seq_k) = (3, 3), got (2, 2)"),
    "json-mask-not-0-1": Case(
        "json-mask-not-0-1.json", "compute {file}",
        E + "json-mask-not-0-1.json: mask: expected true/false or 0/1 values"),
    "json-weights-in-the-other-layout": Case(
        "json-weights-out-in-layout.json", "compute {file}",
        E + "json-weights-out-in-layout.json: W_q: expected (3, H·d_head), got (2, 3) "
        "(json-weights-out-in-layout.json: x has width 3; W_q fits the out_in layout: pass "
        "--weight-layout out_in)"),
    "json-heads-not-dividing-weights": Case(
        "json-heads-not-dividing.json", "compute {file} --heads 3",
        E + "json-heads-not-dividing.json: W_q: width 4 is not divisible by --heads 3"),
    "json-weight-layout-unknown": Case(
        "json-weight-layout-unknown.json", "compute {file}",
        E + "json-weight-layout-unknown.json: weight_layout: expected 'in_out' or 'out_in', got "
        "'rows'"),
    "json-config-not-an-object": Case(
        "json-config-not-object.json", "compute {file}",
        E + "json-config-not-object.json: config: expected an object of option values"),
    "json-config-dropout-out-of-range": Case(
        "json-config-dropout-out-of-range.json", "compute {file}",
        E + "json-config-dropout-out-of-range.json: config.dropout must be in [0, 1), got 1.5"),
    # --- not UTF-8, binary, BOM --------------------------------------------------------------
    "json-binary-file": Case(
        "json-binary.json", "compute {file}",
        E + "json-binary.json: not UTF-8 text (byte 128); is it a binary file?"),
    "json-gzip-file": Case("json-gzip.json", "compute {file}",
                           E + "json-gzip.json: not UTF-8 text (byte 1); is it a binary file?"),
    "json-latin-1-text": Case(
        "json-latin1.json", "compute {file}",
        E + "json-latin1.json: not UTF-8 text (byte 37); is it a binary file?"),
    "json-utf-16-text": Case(
        "json-utf16.json", "compute {file}",
        E + "json-utf16.json: not UTF-8 text (byte 0); is it a binary file?"),
    "json-bom-works": Case("json-bom.json", "compute {file} --json --steps queries", "", status=0,
                           queries=X),
    # --- standard input ----------------------------------------------------------------------
    "stdin-empty": Case(None, "compute -", E + "<stdin>: empty file, expected a JSON object",
                        stdin="json-empty.json"),
    "stdin-binary": Case(None, "compute -",
                         E + "<stdin>: not UTF-8 text (byte 0); is it a binary file?",
                         stdin="stdin-binary.bin"),
    "stdin-truncated": Case(
        None, "compute -",
        E + "<stdin>: invalid JSON at line 1, column 38: Expecting ',' delimiter",
        stdin="json-truncated.json"),
    "stdin-twice": Case(
        None, "compute - --x -", E + "- (standard input) is given for FILE and the x file, but it "
        "can be read only once: save all but one of them to files", stdin="valid.json"),
    "stdin-csv": Case(
        None, "compute --x -", E + "<stdin>: invalid JSON at line 1, column 5: Extra data "
        "(standard input is read as JSON; give a CSV as a file named *.csv)",
        stdin="csv-on-stdin.csv"),
    "stdin-bom-works": Case(None, "compute - --json --steps queries", "", status=0,
                            stdin="stdin-bom.json", queries=X),
    # --- CSV ---------------------------------------------------------------------------------
    "csv-nan": Case("csv-nan.csv", "compute {file}",
                    E + "csv-nan.csv: x: nan at index [1, 1]; every value must be finite"),
    "csv-inf": Case("csv-inf.csv", "compute {file}",
                    E + "csv-inf.csv: x: -inf at index [1, 1]; every value must be finite"),
    "csv-text-cell": Case("csv-text-cell.csv", "compute {file}",
                          E + "csv-text-cell.csv: row 3, column 2: 'big' is not a number"),
    "csv-ragged-rows": Case(
        "csv-ragged-rows.csv", "compute {file}",
        E + "csv-ragged-rows.csv: rows have different numbers of columns (2, 3)"),
    "csv-header-only-is-0-tokens": Case("csv-header-only.csv", "compute {file}",
                                        E + "csv-header-only.csv: a header row but no numbers"),
    "csv-blank-lines-only": Case("csv-blank.csv", "compute {file}",
                                 E + "csv-blank.csv: empty CSV file, expected a matrix"),
    "csv-decimal-commas": Case(
        "csv-decimal-comma.csv", "compute {file}",
        E + "csv-decimal-comma.csv: row 2, column 2: '0,53' is not a number; write decimals "
        "with a point"),
    "csv-space-separated": Case(
        "csv-space-separated.csv", "compute {file}",
        E + "csv-space-separated.csv: row 1: '0.34 0.22 0.54': numbers separated by spaces; "
        "separate them with commas (or tabs)"),
    "csv-pipe-separated": Case(
        "csv-pipe-separated.csv", "compute {file}",
        E + "csv-pipe-separated.csv: row 1: '0.34|0.22|0.54': numbers separated by '|'; "
        "separate them with commas (or tabs)"),
    "csv-latin-1-text": Case(
        "csv-latin1.csv", "compute {file}",
        E + "csv-latin1.csv: not UTF-8 text (byte 2); is it a binary file?"),
    "csv-mask-not-0-1": Case(
        "csv-mask-not-0-1.csv", "compute valid.json --mask {file}",
        E + "csv-mask-not-0-1.csv: mask: expected true/false or 0/1 values"),
    "csv-mask-wrong-shape": Case(
        "csv-mask-wrong-shape.csv", "compute valid.json --mask {file}",
        E + "csv-mask-wrong-shape.csv: mask: expected (seq_q, seq_k) = (3, 3), got (2, 3)"),
    "csv-bom-and-crlf-work": Case("csv-bom-crlf.csv", "compute {file} --json --steps queries",
                                  "", status=0, queries=X, tokens=["0", "1", "2"]),
    "csv-crlf-with-labels-works": Case(
        "csv-crlf-labels.csv", "compute {file} --json --steps queries", "", status=0,
        queries=X, tokens=HELLO),
    "csv-cr-only-works": Case("csv-cr-only.csv", "compute {file} --json --steps queries", "",
                              status=0, queries=X),
    # --- NPY ---------------------------------------------------------------------------------
    "npy-truncated-data": Case(
        "npy-truncated.npy", "compute {file}",
        E + "npy-truncated.npy: not a readable NumPy file: its header claims shape (3, 3) of "
        "float64 (72 bytes), but the file holds 40 bytes of data (truncated?)"),
    "npy-truncated-header": Case(
        "npy-truncated-header.npy", "compute {file}",
        rx(re.escape(E + "npy-truncated-header.npy: not a readable NumPy file: ") + r".*header.*")),
    "npy-giant-shape-not-allocated": Case(
        "npy-giant-header.npy", "compute {file}",
        E + "npy-giant-header.npy: not a readable NumPy file: its header claims shape (1000000, "
        "1000000) of float64 (8,000,000,000,000 bytes), but the file holds 64 bytes of data "
        "(truncated?)"),
    "npy-giant-shape-for-a-key": Case(
        "npy-giant-header.npy", "compute valid.json --x {file}",
        E + "npy-giant-header.npy: not a readable NumPy file: its header claims shape (1000000, "
        "1000000) of float64 (8,000,000,000,000 bytes), but the file holds 64 bytes of data "
        "(truncated?)"),
    "npy-negative-shape": Case(
        "npy-negative-shape.npy", "compute {file}",
        E + "npy-negative-shape.npy: not a readable NumPy file: negative size in shape (-1, 3)"),
    "npy-unknown-format-version": Case(
        "npy-bad-version.npy", "compute {file}",
        rx(re.escape(E + "npy-bad-version.npy: not a readable NumPy file: ") + r".*version.*")),
    "npy-inf": Case("npy-inf.npy", "compute {file}",
                    E + "npy-inf.npy: x: inf at index [1, 0]; every value must be finite"),
    "npy-nan": Case("npy-nan.npy", "compute {file}",
                    E + "npy-nan.npy: x: nan at index [1, 1]; every value must be finite"),
    "npy-zero-tokens": Case("npy-zero-rows.npy", "compute {file}",
                            E + "npy-zero-rows.npy: x: empty array, shape (0, 3)"),
    "npy-object-dtype-not-unpickled": Case(
        "npy-object.npy", "compute {file}",
        E + "npy-object.npy: not a readable NumPy file: it holds Python objects, which are never "
        "unpickled"),
    "npy-a-pickle": Case(
        "npy-pickle.npy", "compute {file}",
        E + "npy-pickle.npy: not a readable NumPy file: it holds Python objects, which are never "
        "unpickled"),
    "npy-strings": Case(
        "npy-strings.npy", "compute {file}",
        E + "npy-strings.npy: x: numbers expected, found the string '0.34'; write numbers without "
        "quotes"),
    "npy-complex": Case("npy-complex.npy", "compute {file}",
                        E + "npy-complex.npy: x: real numbers expected, found complex numbers"),
    "npy-booleans": Case("npy-bool.npy", "compute {file}",
                         E + "npy-bool.npy: x: numbers expected, found true/false"),
    "npy-rank-1": Case("npy-rank-1.npy", "compute {file}",
                       E + "npy-rank-1.npy: x: expected 2-D or 3-D, got shape (3,)"),
    "npy-float32-works": Case("npy-float32.npy", "compute {file} --json --steps queries", "",
                              status=0, queries=X),
    # --- NPZ ---------------------------------------------------------------------------------
    "npz-truncated": Case("npz-truncated.npz", "compute {file}",
                          E + "npz-truncated.npz: not a readable NumPy file: File is not a zip "
                          "file"),
    "npz-not-a-zip": Case("npz-not-a-zip.npz", "compute {file}",
                          E + "npz-not-a-zip.npz: not a readable NumPy file: File is not a zip "
                          "file"),
    "npz-pickled-member": Case(
        "npz-pickled-member.npz", "compute {file}",
        E + "npz-pickled-member.npz: W_q: not a readable NumPy file: it holds Python objects, "
        "which are never unpickled"),
    "npz-giant-member-not-allocated": Case(
        "npz-giant-member.npz", "compute {file}",
        E + "npz-giant-member.npz: x: not a readable NumPy file: its header claims shape "
        "(1000000, 1000000) of float64 (8,000,000,000,000 bytes), but the file holds 64 bytes "
        "of data (truncated?)"),
    "npz-for-one-key": Case(
        "npz-valid.npz", "compute valid.json --wq {file}",
        E + "npz-valid.npz: an NPZ holds several arrays; give it as the problem FILE, not for "
        "W_q"),
    "npz-works": Case("npz-valid.npz", "compute {file} --json --steps queries", "", status=0,
                      queries=X, tokens=HELLO),
    # --- safetensors -------------------------------------------------------------------------
    "safetensors-truncated": Case(
        "safetensors-truncated.safetensors", "compute {file}",
        rx(re.escape(E + "safetensors-truncated.safetensors: not a safetensors file (damaged or "
                     "truncated header: ") + r".+\)")),
    "safetensors-header-claims-1e12-bytes": Case(
        "safetensors-giant-header.safetensors", "compute {file}",
        rx(re.escape(E + "safetensors-giant-header.safetensors: not a safetensors file (damaged "
                     "or truncated header: ") + r".+\)")),
    "safetensors-unknown-tensor": Case(
        "safetensors-valid.safetensors", "compute {file} --tensor x=embedding",
        E + "safetensors-valid.safetensors: x=embedding: no tensor 'embedding' in the file; "
        "closest: embeddings"),
    "safetensors-tensor-key-looks-like-w_q": Case(
        "safetensors-valid.safetensors", "compute {file} --tensor w_q=model.q_proj.weight",
        E + "--tensor 'w_q=model.q_proj.weight': unknown key 'w_q' looks like 'W_q'; write it "
        "'W_q' (key names are exact)"),
    "safetensors-mapped-works": Case(
        "safetensors-valid.safetensors",
        "compute {file} --tensor x=embeddings --tensor W_q=model.q_proj.weight --tensor "
        "W_k=model.k_proj.weight --tensor W_v=model.k_proj.weight --weight-layout out_in --json "
        "--steps queries", "", status=0, queries=X),
    # --- options: absurd sizes, conflicts, unknown names ---------------------------------------
    "option-heads-1e9": Case("valid.json", "compute {file} --heads 1000000000",
                             E + "valid.json: x: width 3 is not divisible by --heads 1000000000"),
    "option-heads-1e12": Case("valid.json", "compute {file} --heads 1000000000000",
                              E + "--heads must be a count from 1, got 1000000000000"),
    "option-heads-not-dividing-x": Case("valid.json", "compute {file} --heads 2",
                                        E + "valid.json: x: width 3 is not divisible by --heads 2"),
    "option-window-huge": Case(
        "valid.json", "compute {file} --window 1000000000000",
        E + "--window must be 0 or more (|i − j| ≤ W), got 1000000000000"),
    "option-window-negative": Case("valid.json", "compute {file} --window -1",
                                   E + "--window must be 0 or more (|i − j| ≤ W), got -1"),
    "option-no-scale-with-scale": Case(
        "valid.json", "compute {file} --no-scale --scale 0.5",
        E + "--no-scale and --scale contradict each other: give one"),
    "option-json-with-format-csv": Case("valid.json", "compute {file} --json --format csv",
                                        E + "--json contradicts --format csv: give one"),
    "option-top-k-without-topk": Case("valid.json", "compute {file} --top-k 2",
                                      E + "--top-k K needs --normalize topk"),
    "option-topk-without-top-k": Case("valid.json", "compute {file} --normalize topk",
                                      E + "--normalize topk needs --top-k K with K ≥ 1"),
    "option-top-k-past-the-keys": Case("valid.json", "compute {file} --normalize topk --top-k 4",
                                       E + "--top-k 4 is more than the 3 keys"),
    "option-dropout-one": Case("valid.json", "compute {file} --dropout 1.0",
                               E + "--dropout must be in [0, 1), got 1.0"),
    "option-dropout-negative": Case("valid.json", "compute {file} --dropout -0.5",
                                    E + "--dropout must be in [0, 1), got -0.5"),
    "option-dropout-nan": Case("valid.json", "compute {file} --dropout nan",
                               E + "--dropout must be in [0, 1), got nan"),
    "option-seed-negative": Case("valid.json", "compute {file} --dropout 0.5 --seed -1",
                                 E + "--seed must be in 0 … 2**63 − 1, got -1"),
    "option-temperature-zero": Case("valid.json", "compute {file} --temperature 0",
                                    E + "--temperature must be a positive number, got 0.0"),
    "option-scale-inf": Case("valid.json", "compute {file} --scale inf",
                             E + "--scale must be a finite number, got inf"),
    "option-unknown-query": Case(
        "valid.json", "compute {file} --query moon",
        E + "--query 'moon': no such token or index; the queries are Hello, shiny, sun (or 0 … "
        "2, −1 for the last)"),
    "option-query-index-out-of-range": Case(
        "valid.json", "compute {file} --query 3",
        E + "--query '3': no such token or index; the queries are Hello, shiny, sun (or 0 … 2, "
        "−1 for the last)"),
    "option-unknown-step": Case("valid.json", "compute {file} --steps weights,attention",
                                E + f"--steps: unknown step attention; choose from {STEPS}"),
    "option-no-step": Case("valid.json", "compute {file} --steps ,",
                           E + f"--steps: unknown step (none); choose from {STEPS}"),
    "option-step-not-computed": Case(
        "valid.json", "compute {file} --steps weights,output",
        E + "--steps output: not computed in this run: there is no W_o (output = context W_o + "
        "b_o)"),
    "option-output-extension-no-format": Case(
        "valid.json", "compute {file} -o weights.xlsx",
        E + "-o weights.xlsx: .xlsx is no format attncli writes; the extension picks one of "
        ".json (json), .csv (csv), .md (markdown), .npz (npz), .npy (npy), .py (torch), .html "
        "(html), .htm (html), .txt or none for a table; or give --format"),
    "option-output-an-image": Case(
        "valid.json", "compute {file} -o weights.png",
        E + "-o weights.png: an image is drawn with --plot weights.png; -o writes the steps as "
        "text or arrays"),
    "option-output-only-an-extension": Case(
        "valid.json", "compute {file} -o .json",
        E + "-o .json: a file name that is only an extension; give a name before it, e.g. -o "
        "steps.json"),
    "option-file-and-sample": Case(
        "valid.json", "compute {file} --sample three-inputs",
        E + "valid.json and --sample three-inputs: give one problem, not both (--sample goes with "
        "a .safetensors FILE, whose weights it takes; --x, --wq … --set KEY=FILE replace one key "
        "of either)"),
    "option-npy-of-several-steps": Case(
        "valid.json", "compute {file} --format npy",
        E + "--format npy holds one array: give --steps NAME (one step), or write NPZ "
        "(-o FILE.npz)"),
    "option-unknown-sample": Case(
        None, "compute --sample hello-moon",
        E + "unknown sample 'hello-moon'; known: hello-shiny-sun, multihead-einsum, three-inputs, "
        "translation-cross, your-journey-causal (attncli samples lists them)"),
    "option-no-input": Case(
        None, "compute",
        E + "no input: give a problem FILE, --sample NAME or --x FILE (try: attncli compute "
        "--sample hello-shiny-sun)"),
    "option-tensor-without-safetensors": Case(
        "valid.json", "compute {file} --tensor W_q=model.q_proj.weight",
        E + "--tensor maps the tensor names of a .safetensors problem FILE; got valid.json"),
    "option-set-without-file": Case("valid.json", "compute {file} --set b_q",
                                    E + "--set 'b_q': expected KEY=FILE, e.g. --set b_q=bq.csv"),
    "option-set-key-not-in-file": Case(
        "valid.json", "compute {file} --set b_q={file}",
        E + "valid.json: given for b_q but holds no key 'b_q'"),
    # a key named on the command line is never ignored (once a warning, and a run without it)
    "option-set-key-looks-like-w_o": Case(
        "valid.json", "compute {file} --set W_out={file}",
        E + "--set 'W_out=valid.json': unknown key 'W_out' looks like 'W_o'; write it 'W_o' (key "
        "names are exact)"),
    "option-set-unknown-key": Case(
        "valid.json", "compute {file} --set notes={file}",
        E + "--set 'notes=valid.json': 'notes' is not a problem key "
        "(one of x, memory, key_memory, value_memory, W_q, W_k, W_v, b_q, b_k, b_v, q_norm, "
        "k_norm, W_o, b_o, W_a, U_a, v_a, b_a, alibi_slopes, bias, sinks, positions, "
        "key_positions, mask, key_padding_mask, dropout_mask, tokens, memory_tokens, "
        "weight_layout, config, about, expected, rope_scaling)"),
    "option-missing-key-file": Case("valid.json", "compute {file} --wk missing.csv",
                                    E + "missing.csv: no such file"),
    # --- usage errors of the console script (Click's parser), one line too ---------------------
    "usage-heads-not-an-integer": Case(
        "valid.json", "compute {file} --heads abc",
        usage("Invalid value for '--heads': 'abc' is not a valid int."), entry="main"),
    "usage-unknown-format": Case(
        "valid.json", "compute {file} --format xml",
        usage("Invalid value for '--format' / '-f': 'xml' is not one of 'table', 'json', 'csv', "
              "'markdown', 'npz', 'npy', 'torch', 'html'."), entry="main"),
    "usage-precision-out-of-range": Case(
        "valid.json", "compute {file} --precision 99",
        usage("Invalid value for '--precision': 99 is not in the range 0<=x<=17."),
        entry="main"),
    "usage-unknown-weight-layout": Case(
        "valid.json", "compute {file} --weight-layout rows",
        usage("Invalid value for '--weight-layout': 'rows' is not one of 'in_out', 'out_in'."),
        entry="main"),
    # Path() would read '' as '.' and a-folder/ as a file named a-folder
    "usage-output-a-folder": Case(
        "valid.json", "compute {file} -o missing-folder/",
        usage("Invalid value for '--output' / '-o': 'missing-folder/' ends in /, a folder, not "
              "a file; give a file name in it (missing-folder/NAME)"), entry="main"),
    "usage-output-empty": Case(
        "valid.json", "compute {file} -o ''",
        usage("Invalid value for '--output' / '-o': an empty name is no file; give a file "
              "name"), entry="main"),
    # --- check and explain ---------------------------------------------------------------------
    "check-answers-not-an-object": Case(
        "answers-not-an-object.json", "check valid.json {file}",
        E + "answers-not-an-object.json: expected a JSON object of step → array"),
    "check-answers-duplicate-step": Case(
        "answers-duplicate-step.json", "check valid.json {file}",
        E + "answers-duplicate-step.json: key 'context' appears twice in one JSON object; give "
        "each key once"),
    "check-answers-nan": Case(
        "answers-nan.json", "check valid.json {file}",
        E + "answers-nan.json: context: every answer must be a finite number (null, for −∞, only "
        "in masked_scores)"),
    "check-answers-unknown-step": Case(
        "answers-unknown-step.json", "check valid.json {file}",
        E + f"answers-unknown-step.json: contexts: not a step; the steps are {STEPS}"),
    "check-no-answers": Case(
        "valid.json", "check {file}",
        E + "no answers: give PROBLEM and ANSWERS files (or --sample NAME and ANSWERS)"),
    "check-bad-problem": Case(
        "json-nan-literal.json", "check {file} answers-right.json",
        E + "json-nan-literal.json: x: nan at index [0, 1]; every value must be finite"),
    "check-right-answers-work": Case("answers-right.json", "check valid.json {file}", "",
                                     status=0),
    "check-answers-a-word": Case(
        "answers-inf-word.json", "check valid.json {file}",
        E + "answers-inf-word.json: context: 'inf' is not a number (−∞ is written null, \"-inf\", "
        "\"-Infinity\" or \"−∞\")"),
    "check-stdin-twice": Case(
        None, "check - -", E + "- (standard input) is given for PROBLEM and ANSWERS, but it can "
        "be read only once: save all but one of them to files", stdin="answers-right.json"),
    "check-problem-file-with-sample": Case(
        "valid.json", "check --sample three-inputs {file} answers-right.json",
        E + "valid.json: gives x, a problem's inputs, not answers: with --sample three-inputs "
        "every FILE is ANSWERS; a PROBLEM file goes with no --sample (attncli check PROBLEM "
        "ANSWERS)"),
    "check-bad-tolerance": Case(
        "answers-right.json", "check valid.json {file} --tolerance sigfigs:0",
        E + "--tolerance sigfigs:0: bad number '0'; expected decimals, decimals:N, sigfigs:N, "
        "rel:R or abs:A (e.g. sigfigs:3, rel:0.01), N from 1 to 17 (decimals: 0 to 17), R and A "
        "finite ≥ 0"),
    "explain-unknown-key": Case(
        "valid.json", "explain {file} --query shiny --key moon",
        E + "--key 'moon': no such token or index; the keys are Hello, shiny, sun"),
}


def run(case: Case):
    """(exit status, stdout, stderr) of the case, run in the corpus folder."""
    args = [a.replace("{file}", case.file or "") for a in shlex.split(case.args)]
    stdin = (CORPUS / case.stdin).read_bytes() if case.stdin else None
    runner = CliRunner()
    if case.entry == "app":
        result = runner.invoke(app, args, input=stdin, env=ENV)
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            repr(result.exception)
        return result.exit_code, result.stdout, result.stderr
    with runner.isolation(input=stdin, env=ENV) as (out, err, _):
        saved, sys.argv = sys.argv, ["attncli", *args]
        try:
            main()
            status = 0
        except SystemExit as exit:
            status = exit.code
        finally:
            sys.argv = saved
        return status, out.getvalue().decode(), err.getvalue().decode()


@pytest.mark.parametrize("name", list(CASES))
def test_corpus_case(name, monkeypatch):
    case = CASES[name]
    monkeypatch.chdir(CORPUS)
    status, stdout, stderr = run(case)
    for text in (stdout, stderr):
        assert "Traceback" not in text
        assert "internal error" not in text
    assert status == case.status, (status, stderr)
    line = stderr.removesuffix("\n")
    if case.status == 2:
        assert stdout == "", "nothing on stdout for a rejection"
        assert stderr.endswith("\n") and "\n" not in line, f"not one line: {stderr!r}"
        assert line.startswith(E), line
    if isinstance(case.stderr, re.Pattern):
        assert case.stderr.fullmatch(line), line
    else:
        assert line == case.stderr
    if case.status == 0:
        assert stdout
        if case.queries is not None or case.tokens is not None:
            doc = json.loads(stdout)
            if case.queries is not None:
                np.testing.assert_allclose(doc["steps"]["queries"]["data"], case.queries,
                                           rtol=1e-6)
            if case.tokens is not None:
                assert doc["tokens"] == case.tokens


def test_the_corpus_is_large_and_every_file_is_used():
    rejections = [name for name, case in CASES.items() if case.status == 2]
    assert len(rejections) >= 40
    assert len(CASES) >= 45
    present = {p.name for p in CORPUS.iterdir()} - {"make_binary.py", ".gitattributes",
                                                      "__pycache__"}
    named = {c.file for c in CASES.values()} | {c.stdin for c in CASES.values()}
    also = {word for c in CASES.values() for word in shlex.split(c.args) if word in present}
    assert present - named - also == set(), "corpus files no case runs"
    assert named - {None} - present == set(), "cases whose file is not in the corpus"


def test_make_binary_reproduces_the_committed_files(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(CORPUS))
    import make_binary

    make_binary.main(tmp_path)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made
    for name in made:
        assert (tmp_path / name).read_bytes() == (CORPUS / name).read_bytes(), name


def test_a_device_is_refused_not_read(monkeypatch):
    # /dev/zero never ends: reading it as JSON would fill the memory
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero here")
    status, stdout, stderr = run(Case(None, "compute /dev/zero", ""))
    assert (status, stdout, stderr) == (2, "", E + "/dev/zero: is a device, not a file\n")


# --- README.md lists every message of the corpus ------------------------------------------------
README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- corpus: start -->", "<!-- corpus: end -->"


def _row(name: str, case: Case, message: str) -> str:
    command = "attncli " + case.args.replace("{file}", case.file or "")
    if case.stdin:
        command += f" < {case.stdin}"
    cell = message.removeprefix(E).replace("|", "\\|")
    return f"| `{command}` | {cell} |"


def readme_table() -> str:
    """The README's table of messages, from real runs of the corpus (for regex cases, the
    text this machine's libraries write)."""
    import os

    here = Path.cwd()
    os.chdir(CORPUS)
    try:
        rows = [_row(name, case, run(case)[2].removesuffix("\n"))
                for name, case in CASES.items() if case.status == 2]
    finally:
        os.chdir(here)
    return "\n".join(["| command (in tests/corpus/) | message |", "|---|---|", *rows])


def test_readme_lists_every_message_of_the_corpus():
    """Docs that cannot drift: each rejection of the corpus is a row of README.md, command and
    message. After a change, `python tests/test_corpus.py` prints the table to paste."""
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text
    rows = [line for line in text.split(START, 1)[1].split(END, 1)[0].splitlines()
            if line.startswith("| `")]
    listed = {}
    for line in rows:
        command, message = line[3:-2].split("` | ", 1)
        listed[command] = E + message.replace("\\|", "|")
    for name, case in CASES.items():
        if case.status != 2:
            continue
        command = _row(name, case, "")[3:].split("` | ", 1)[0]
        assert command in listed, f"README.md lacks {name}: run python tests/test_corpus.py"
        if isinstance(case.stderr, re.Pattern):
            assert case.stderr.fullmatch(listed[command]), (name, listed[command])
        else:
            assert listed[command] == case.stderr, (name, listed[command])


if __name__ == "__main__":
    print(readme_table())
