"""Terminal output choices shared by the reading commands: colour mode, format, safe JSON lines."""

from __future__ import annotations

import enum
import json
import re
from typing import Any, TextIO

from rich.console import Console


class OutputFormat(str, enum.Enum):
    text = "text"
    json = "json"


class ColorMode(str, enum.Enum):
    auto = "auto"
    always = "always"
    never = "never"


_FORCED: dict[ColorMode, dict[str, Any]] = {
    ColorMode.auto: {},
    ColorMode.always: {"force_terminal": True, "no_color": False, "color_system": "standard"},
    ColorMode.never: {"no_color": True, "color_system": None},
}


def console_for(file: TextIO, mode: ColorMode) -> Console:
    """A Rich console that colours per `mode`; auto means a terminal and no non-empty NO_COLOR.

    Markup, emoji codes and highlighting are off: text from events must print as written.
    """
    return Console(file=file, highlight=False, markup=False, emoji=False, soft_wrap=True, **_FORCED[mode])


def colours(console: Console) -> bool:
    return console.color_system is not None and not console.no_color


# json.dumps escapes C0 controls itself; these would still reach a terminal raw.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def json_text(value: object) -> str:
    """Compact-enough JSON, readable non-ASCII, and nothing a terminal would act on."""
    text = json.dumps(value, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
