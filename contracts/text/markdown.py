"""Markdown to the plain blocks a person would read aloud.

Small chat models answer in Markdown; what is said is the text the markup
decorates. ``plain_blocks`` parses with markdown-it-py (CommonMark with tables
and strikethrough) and returns one plain string per block a reader would pause
after: a paragraph, a heading, a list item, a table row. Inline markup keeps its
text: emphasis, strikethrough, inline code, a link's text (never its address),
an image's alt text. Code blocks are left out (nobody reads code aloud), raw
HTML keeps only its text, block quotes are read as their content, and an item of
an ordered list starts with its number ("1, Open the door"). Entities and
backslash escapes are decoded by the parser. Plain text with no Markdown in it
comes back as one block per paragraph with its lines joined.
"""

from __future__ import annotations

import re
from typing import Sequence

from markdown_it import MarkdownIt
from markdown_it.token import Token

_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_TAG = re.compile(r"<[^>]{0,500}>")
# Text that CommonMark would read as nothing but itself: no markup character, no
# line break, no entity. It skips the parser (which costs more than everything else).
_MARKUP = re.compile(r"[*_#`\[\]<>|~\\&!=]|\n|^\s|^\d+[.)]\s|^[-+]\s")
# Blocks that end a plain block when they close.
_BLOCK_ENDS = frozenset({"paragraph_close", "heading_close", "tr_close", "html_block"})


def _inline_text(children: Sequence[Token]) -> str:
    """The text of an inline token's children: emphasis and links reduced to their words."""
    parts: list[str] = []
    for child in children:
        kind = child.type
        if kind in ("text", "code_inline"):
            parts.append(child.content)
        elif kind == "image":
            parts.append(child.content)  # the alt text
        elif kind in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif kind == "html_inline":
            parts.append(" ")
        # em/strong/s/link open and close tokens carry no words.
    return "".join(parts)


def _compact(text: str) -> str:
    return " ".join(text.split())


def plain_blocks(text: str) -> list[str]:
    """``text`` (Markdown or plain) as the blocks a reader would say, each without markup.

    Blocks are stripped and never empty; a table row is its cells joined by commas.
    """
    if not _MARKUP.search(text):
        block = _compact(text)
        return [block] if block else []
    blocks: list[str] = []
    current: list[str] = []
    cells: list[str] = []
    in_cell = False

    def flush() -> None:
        block = _compact("".join(current))
        if block:
            blocks.append(block)
        current.clear()

    for token in _PARSER.parse(text):
        kind = token.type
        if kind == "list_item_open" and token.info and token.markup in (".", ")"):
            current.append(f"{token.info}, ")  # an ordered item starts with its number
        elif kind in ("th_open", "td_open"):
            in_cell = True
        elif kind in ("th_close", "td_close"):
            in_cell = False
        elif kind == "inline":
            words = _inline_text(token.children or [])
            if in_cell:
                cells.append(_compact(words))
            else:
                current.append(words)
        elif kind == "html_block":
            current.append(_TAG.sub(" ", token.content))
        elif kind == "tr_close":
            current.append(", ".join(cell for cell in cells if cell))
            cells.clear()
        elif kind == "hr":
            flush()
        # fence and code_block: code is not read aloud.
        if kind in _BLOCK_ENDS:
            flush()
    flush()
    return blocks
