"""Token labels (attncli/models/tokens.py) and --query's matching (attncli.models.query_row)."""

from __future__ import annotations

import pytest

from attncli.errors import InputError
from attncli.models import query_row
from attncli.models.tokens import byte_level, labels


def test_byte_level_tokens_are_the_text_they_spell():
    # GPT-2's bytes_to_unicode: "é" is the bytes C3 A9, spelled "Ã" (0xC3) "©" (0xA9); a space
    # (0x20, not printable in the scheme) is "Ġ"; "日" is E6 97 A5, here split in three tokens
    assert byte_level("Ã©") == "é"
    assert byte_level("ĠcafÃ©") == " café"
    assert byte_level("Ġæ") == " <0xE6>"
    assert byte_level("Ĺ") == "<0x97>"
    assert byte_level("æľ¬") == "本"  # E6 9C AC
    assert byte_level("[CLS]") == "[CLS]"


def test_labels_show_spaces_and_line_breaks_and_are_unique():
    assert labels(["Ġthe", "Ġcat", "Ċ", "Ġthe"], bytes_level=True) == ["␣the", "␣cat", "↵",
                                                                       "␣the#2"]
    # SentencePiece: ▁ is a space, <0x0A> a byte token for a line break; past 0x7F a byte
    # token is part of a character and stays as it is
    assert labels(["▁the", "<0x0A>", "<0xE6>", "▁the"]) == ["␣the", "↵", "<0xE6>", "␣the#2"]
    # WordPiece keeps its ## and its case; the second "the" is the#2 unless the#2 is taken
    assert labels(["the", "##s", "the", "the#2"]) == ["the", "##s", "the#3", "the#2"]


@pytest.mark.parametrize(("query", "row"), [("␣mat", 3), (" mat", 3), ("mat", 3), ("MAT", 3),
                                            ("The", 0), ("2", 2), ("-1", 3)])
def test_query_row(query, row):
    assert query_row(["The", "␣cat", "␣the", "␣mat"], query) == row


def test_an_ambiguous_bare_word_is_not_guessed():
    # "the" is both "the" and "␣the": only the exact label or an index picks one
    with pytest.raises(InputError, match="no such token"):
        query_row(["The", "␣the", "the"][1:] + ["x"], "THE")
