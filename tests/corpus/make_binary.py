"""Write the corpus files whose exact bytes matter: NPY, NPZ, safetensors, text that is not
UTF-8, and CSV with a BOM or Windows line endings. The outputs are committed beside this
script; tests/test_corpus.py checks that running it again gives the same bytes.

Usage: python tests/corpus/make_binary.py [FOLDER]   (default: this script's folder)
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

X = np.array([[0.34, 0.22, 0.54], [0.53, 0.34, 0.98], [0.29, 0.54, 0.93]])
BOM = b"\xef\xbb\xbf"


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    handle = io.BytesIO()
    np.save(handle, array, allow_pickle=allow_pickle)
    return handle.getvalue()


def npy_header(shape: tuple, descr: str = "<f8", version: bytes = b"\x01\x00") -> bytes:
    """Only the header of an NPY file (format 1.0), claiming ``shape``, padded as numpy pads."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin-1")
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY" + version + struct.pack("<H", len(header)) + header


def npz(members: dict[str, bytes]) -> bytes:
    """A zip of NPY members as np.savez writes it, with a fixed date so the bytes repeat."""
    handle = io.BytesIO()
    with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                             data)
    return handle.getvalue()


def safetensors(tensors: dict[str, np.ndarray]) -> bytes:
    from safetensors.numpy import save

    return save(tensors)


def files() -> dict[str, bytes]:
    x = npy(X)
    pairs = [(t, row) for t, row in zip(["Hello", "shiny", "sun"], X.tolist(), strict=True)]
    labelled = "".join(f"{t},{','.join(map(str, row))}\r\n" for t, row in pairs)
    checkpoint = safetensors({"model.q_proj.weight": np.eye(3), "model.k_proj.weight": np.eye(3),
                              "embeddings": X})
    return {
        # text that must arrive byte for byte
        "csv-bom-crlf.csv": BOM + b"d0,d1,d2\r\n0.34,0.22,0.54\r\n0.53,0.34,0.98\r\n"
                                  b"0.29,0.54,0.93\r\n",
        "csv-crlf-labels.csv": (",d0,d1,d2\r\n" + labelled).encode(),
        "csv-cr-only.csv": b"0.34,0.22,0.54\r0.53,0.34,0.98\r0.29,0.54,0.93\r",
        "csv-latin1.csv": "Grüß,0.34,0.22\ndich,0.53,0.34\n".encode("latin-1"),
        "json-bom.json": BOM + json.dumps({"x": X.tolist()}).encode(),
        "json-latin1.json": '{"x": [[1, 0], [0, 1]], "about": "café"}\n'.encode("latin-1"),
        "json-utf16.json": json.dumps({"x": X.tolist()}).encode("utf-16"),
        "json-binary.json": bytes(range(256)),
        "json-gzip.json": gzip.compress(json.dumps({"x": X.tolist()}).encode(), mtime=0),
        "stdin-binary.bin": b"\xff\xfe\x00\x01",
        "stdin-bom.json": BOM + json.dumps({"x": X.tolist()}).encode(),
        # NPY
        "npy-truncated.npy": x[:len(x) - 32],
        "npy-truncated-header.npy": x[:40],
        "npy-giant-header.npy": npy_header((10**6, 10**6)) + bytes(64),
        "npy-negative-shape.npy": npy_header((-1, 3)) + bytes(24),
        "npy-bad-version.npy": npy_header((3, 3), version=b"\x09\x00") + bytes(72),
        "npy-inf.npy": npy(np.array([[0.34, 0.22], [np.inf, 0.98]])),
        "npy-nan.npy": npy(np.array([[0.34, 0.22], [0.53, np.nan]])),
        "npy-zero-rows.npy": npy(np.zeros((0, 3))),
        "npy-object.npy": npy(np.array([{"x": 1}, None], dtype=object), allow_pickle=True),
        "npy-pickle.npy": pickle.dumps(X.tolist(), protocol=4),
        "npy-strings.npy": npy(np.array([["0.34", "0.22"], ["0.53", "0.34"]])),
        "npy-complex.npy": npy(np.array([[1 + 2j, 0], [0, 1]])),
        "npy-bool.npy": npy(np.eye(2, dtype=bool)),
        "npy-rank-1.npy": npy(np.array([0.34, 0.22, 0.54])),
        "npy-float32.npy": npy(X.astype(np.float32)),
        # NPZ
        "npz-valid.npz": npz({"x": x, "tokens": npy(np.array(["Hello", "shiny", "sun"]))}),
        "npz-truncated.npz": npz({"x": x, "W_q": npy(np.eye(3))})[:200],
        "npz-pickled-member.npz": npz({"x": x, "W_q": npy(np.array([None, {"W_q": 1}],
                                                                   dtype=object),
                                                          allow_pickle=True)}),
        "npz-giant-member.npz": npz({"x": npy_header((10**6, 10**6)) + bytes(64)}),
        "npz-not-a-zip.npz": b"PK\x03\x04 this is not a zip archive\n",
        # safetensors
        "safetensors-valid.safetensors": checkpoint,
        "safetensors-truncated.safetensors": checkpoint[:len(checkpoint) - 40],
        "safetensors-giant-header.safetensors": struct.pack("<Q", 10**12) + b'{"x": {',
    }


def main(folder: Path) -> None:
    for name, data in files().items():
        (folder / name).write_bytes(data)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
