"""Token labels: a tokenizer's tokens made readable and unique."""

from __future__ import annotations

#: The marks tokenizers use for a space or a line break, and what attncli shows: GPT-2's
#: byte-level "Ġ" and "Ċ", SentencePiece's "▁".
SPACE, NEWLINE = "␣", "↵"
_MARKS = {"Ġ": SPACE, "▁": SPACE, "Ċ": NEWLINE, "ĉ": "⇥"}


def readable(token: str) -> str:
    """A token with its space and line-break marks shown as ␣ and ↵ (``Ġcat`` → ``␣cat``,
    ``▁the`` → ``␣the``); WordPiece's ``##`` stays (it says the token continues a word)."""
    text = "".join(_MARKS.get(c, c) for c in token)
    return text.replace(" ", SPACE).replace("\n", NEWLINE) or "∅"


def labels(tokens: list[str]) -> list[str]:
    """Readable labels, unique: the second ``the`` of a sentence is ``the#2``, the third
    ``the#3``."""
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
