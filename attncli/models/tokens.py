"""Token labels: a tokenizer's tokens made readable and unique."""

from __future__ import annotations

import re

#: The marks tokenizers use for a space or a line break, and what attncli shows: GPT-2's
#: byte-level "Ġ" and "Ċ", SentencePiece's "▁".
SPACE, NEWLINE = "␣", "↵"
_MARKS = {"Ġ": SPACE, "▁": SPACE, "Ċ": NEWLINE, "ĉ": "⇥"}


def _byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the character that stands for each byte in a byte-level
    BPE token (printable bytes as themselves, the others shifted to U+0100 …).
    Source: openai/gpt-2 encoder.py, bytes_to_unicode (as transformers' GPT2Tokenizer)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


_BYTES = _byte_alphabet()


def byte_level(token: str) -> str:
    """A byte-level BPE token (GPT-2, Llama 3, SmolLM2) as the text it stands for: ``Ã©`` →
    ``é``, ``ĠcafÃ©`` → `` café``; a token holding only part of a character as its bytes,
    ``<0xF0><0x9F>``. A token with a character outside the alphabet is returned unchanged."""
    if any(c not in _BYTES for c in token):
        return token
    data = bytes(_BYTES[c] for c in token)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(chr(b) if b < 128 else f"<0x{b:02X}>" for b in data)


def _byte_token(token: str) -> str:
    """SentencePiece's byte tokens: ``<0x0A>`` → ``↵``, ``<0x20>`` → ``␣``; others unchanged."""
    match = re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", token)
    if match:
        char = chr(int(match[1], 16))  # past 0x7F a byte is part of a character: kept
        if char.isascii() and (char.isprintable() or char in "\n\t"):
            return char
    return token


def readable(token: str) -> str:
    """A token with its space and line-break marks shown as ␣ and ↵ (``Ġcat`` → ``␣cat``,
    ``▁the`` → ``␣the``); WordPiece's ``##`` stays (it says the token continues a word)."""
    text = "".join(_MARKS.get(c, c) for c in _byte_token(token))
    return text.replace(" ", SPACE).replace("\n", NEWLINE).replace("\t", "⇥") or "∅"


def labels(tokens: list[str], bytes_level: bool = False) -> list[str]:
    """Readable labels, unique: the second ``the`` of a sentence is ``the#2``, the third
    ``the#3``. With ``bytes_level`` (a byte-level BPE tokenizer), each token is first the
    text it stands for (:func:`byte_level`)."""
    if bytes_level:
        tokens = [byte_level(t) for t in tokens]
    seen: dict[str, int] = {}
    out = []
    taken = {readable(t) for t in tokens}
    for token in tokens:
        label = readable(token)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            candidate, n = f"{label}#{seen[label]}", seen[label]
            while candidate in taken:
                n += 1
                candidate = f"{label}#{n}"
            taken.add(candidate)
            label = candidate
        out.append(label)
    return out
