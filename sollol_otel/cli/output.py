"""Output choices of the reading commands: the format, and JSON lines safe for a terminal."""

from __future__ import annotations

import enum
import json
import re


class OutputFormat(str, enum.Enum):
    text = "text"
    json = "json"
    line = "line"


# json.dumps escapes C0 controls itself; these would still reach a terminal raw.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def json_text(value: object) -> str:
    """Compact-enough JSON, readable non-ASCII, and nothing a terminal would act on."""
    text = json.dumps(value, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
