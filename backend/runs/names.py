"""What a name a user gives (a run's, a sweep's, an upload's) may hold: no control characters and
no Unicode format characters (category Cf). Those are invisible, and some reorder the text
around them: with U+202E RIGHT-TO-LEFT OVERRIDE, "rtl \u202egnp.exe" shows as "rtl exe.png", so a
name could look like another run's or hide what it says."""

from __future__ import annotations

import unicodedata

CONTROL = "\\x00-\\x1f\\x7f"


def _format_ranges() -> str:
    """Every Cf character as regex class ranges of the characters themselves. Cf lies in planes
    0, 1 and 14 (the tags) only: scanning those takes ~10 ms, all of Unicode 20 times that."""
    found = [c for r in (range(0x20000), range(0xE0000, 0xE1000)) for c in r if unicodedata.category(chr(c)) == "Cf"]
    ranges: list[tuple[int, int]] = []
    for c in found:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


VALIDATED_PATTERN = f"^[^{CONTROL}]+$"  # what pydantic's own pattern check refuses (its message)
# what the API document says: format characters too (refused by `visible`, with a clearer message)
DOCUMENTED_PATTERN = f"^[^{CONTROL}{_format_ranges()}]+$"


def format_characters(text: str) -> list[str]:
    """The format characters in `text`, as U+XXXX, each once, in order."""
    found = (c for c in text if unicodedata.category(c) == "Cf")
    return [f"U+{ord(c):04X}" for c in dict.fromkeys(found)]


def visible(name: str) -> str:
    """The name, or ValueError naming its format characters."""
    found = format_characters(name)
    if found:
        raise ValueError(
            f"invisible format characters are not allowed in a name ({', '.join(found)}): "
            "they hide or reorder the text around them"
        )
    return name
