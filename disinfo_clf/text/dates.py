"""Reading the dates of EUvsDisinfo case pages and exports."""
from __future__ import annotations

import datetime as dt

# Slashed dates are European, day first: 11/01/2022 is 11 January 2022.
_FORMATS = ("%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y", "%B %d, %Y", "%b %d, %Y", "%d %B %Y", "%B %d %Y")
DATE_HINT = "write it as dd.mm.yyyy, dd/mm/yyyy (11/01/2022 is 11 January 2022), YYYY-MM-DD or 'March 02, 2022'"


def parse_date(value: str) -> dt.date:
    """The date in ``value`` (``dd.mm.yyyy``, ``dd/mm/yyyy``, ``YYYY-MM-DD``, ``March 02, 2022``,
    ``Mar 2, 2022``, ``2 March 2022``); a ValueError saying how to write it otherwise.
    """
    text = value.strip()
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"cannot read {value!r} as a date; {DATE_HINT}")
