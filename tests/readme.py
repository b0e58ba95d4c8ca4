"""The README's code blocks as the commands a reader copies: the tests that run them as written read them here.

A command that rots in the README then fails a test instead of an operator's first try.
"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def fenced_blocks(text: str) -> list[str]:
    """The bodies of the text's fenced code blocks, in order."""
    return re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)


def section(text: str, heading: str) -> str:
    """The text under ``heading`` (a whole line, e.g. ``## Install as an operator``) up to the next
    level-2 or level-3 heading (shell comments in code blocks start with one ``#`` and never end it)."""
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    end = re.search(r"^#{2,3} ", text[start:], flags=re.M)
    return text[start:start + end.start()] if end else text[start:]


def command_lines(block: str) -> list[str]:
    """The command lines of a code block: continuation lines joined, blank and comment-only lines left out."""
    lines = (line.strip() for line in block.replace("\\\n", " ").splitlines())
    return [line for line in lines if line and not line.startswith("#")]
