"""The bundled samples: the seed documents' worked examples as problem files.

They live in the repository's ``samples/`` and are installed as ``attncli/_samples``.
"""

from __future__ import annotations

from pathlib import Path

from attncli.errors import InputError


def directory() -> Path:
    """The samples folder of an installed wheel, or the repository's in a source checkout."""
    installed = Path(__file__).parent / "_samples"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "samples"


def names() -> list[str]:
    return sorted(p.stem for p in directory().glob("*.json"))


def sample_path(name: str) -> Path:
    """Path of the sample ``name``. Raises: InputError for an unknown name, listing the known."""
    path = directory() / f"{name}.json"
    if not path.is_file():
        raise InputError(f"unknown sample {name!r}; known: {', '.join(names()) or 'none'} "
                         "(attncli samples lists them)")
    return path


def about(name: str) -> str:
    import orjson

    return str(orjson.loads(sample_path(name).read_bytes()).get("about", ""))
