"""PostgreSQL COPY's text format, for the bulk writers (demo seeding, customer imports)."""

from __future__ import annotations

import datetime

COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value) -> str:
    """One value in COPY's text format (NULL as \\N, booleans as t/f, dates in ISO form)."""
    if type(value) is str:
        return value.translate(COPY_ESCAPES)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    return str(value).translate(COPY_ESCAPES)
