"""Making untrusted event text safe to print.

Model names come from client requests, so any field may hold terminal escape sequences
(kubectl's CVE-2021-25743) or bidirectional overrides that reorder what an operator reads.
"""

from __future__ import annotations

import re

# C0 controls except tab, DEL, C1 controls, and the Unicode bidi embedding/override/isolate marks.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def safe_text(value: object) -> str:
    """`str(value)` with every control character shown as a visible escape."""
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)
