"""How ptlab reads numbers out of text and writes values into table cells (console tables, CSV files)."""

from __future__ import annotations

import math
from typing import Any


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a finite number ("2", " -0.5 ", "1e3"; not "nan", "inf" or "")."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def number_first(text: str) -> tuple[int, float, str]:
    """Sort key: numbers first, by value (so "2" < "10"), then other text alphabetically."""
    return (0, float(text), text) if is_number(text) else (1, 0.0, text)


def cell(value: Any, digits: int = 6) -> str:
    """``value`` as a table cell: floats to ``digits`` significant digits, None as empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)
