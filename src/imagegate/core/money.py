"""Money as integers of a micro-unit of the operator's currency; decimals only at the edges."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

MICROS_PER_UNIT = 1_000_000
#: The most a balance or an amount may be: far below the 64-bit columns' limit (9.2e18), so sums cannot overflow.
MAX_MICROS = 10**18


def parse_amount(text: str) -> int:
    """``"12.50"`` -> 12_500_000 micro-units; refuses negatives, non-numbers and sub-micro precision."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {text!r}") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"an amount must be a non-negative number: {text!r}")
    # Checked before any arithmetic: "1e999999999" overflows Decimal's context or builds a billion-digit int.
    if value > Decimal(MAX_MICROS) / MICROS_PER_UNIT:
        raise ValueError(f"an amount may be at most {format_amount(MAX_MICROS)}: {text!r}")
    micros = value * MICROS_PER_UNIT
    if micros != micros.to_integral_value():
        raise ValueError(f"amounts have at most 6 decimal places: {text!r}")
    return int(micros)


def format_amount(micros: int) -> str:
    """12_500_000 -> ``"12.5"``; exact, never through a float."""
    value = (Decimal(micros) / MICROS_PER_UNIT).normalize()
    text = format(value, "f")
    return text
