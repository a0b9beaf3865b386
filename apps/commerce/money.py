"""Money display: integer fen in, a yuan string out. The one place it is formatted."""

from __future__ import annotations


def yuan(fen: int) -> str:
    """``1250`` -> ``"¥12.50"``; negative amounts keep their sign (``"-¥3.00"``)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}¥{whole}.{cents:02d}"
