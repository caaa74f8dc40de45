"""Splits a message into the sentences a person wrote, so a long letter is read part by part.

People in crisis write long, rambling messages; the one line that matters ("tối nay nó về là em
chết") may sit in the middle of a story about money and in-laws. Reading only the whole text lets
the rest drown that line; reading each sentence alone loses who "nó" is. The readers use both
(``bot.understanding``): the whole message, then each sentence.

A sentence ends at . ! ? … ; a line break, or " - " used as a dash. Pieces under three words are
joined to the sentence before them ("Dạ. Em chào chị." is one greeting, not two).
"""
from __future__ import annotations

import re

_END = re.compile(r"(?<=[.!?…;])\s+|\n+|\s+-\s+|(?<=[.!?])(?=[A-ZÀ-Ỹa-zà-ỹ])")
_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
MIN_WORDS = 3


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order (the text itself when it is one sentence)."""
    if not text:
        return []
    out: list[str] = []
    for piece in _END.split(text):
        piece = piece.strip(" \t-–—•*")
        if not piece or not _WORDS.search(piece):
            continue
        if out and len(_WORDS.findall(piece)) < MIN_WORDS:
            out[-1] = f"{out[-1]} {piece}"
        elif out and len(_WORDS.findall(out[-1])) < MIN_WORDS:
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    return out


def is_long(text: str) -> bool:
    """Worth reading part by part: more than one sentence."""
    return len(sentences(text)) > 1
