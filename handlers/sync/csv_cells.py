"""Reading one cell of a Dashboard export: dates, amounts, counts, flags.

Each parser names the column in its error, so a bad file's message points at the cell.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from storage.money import exponent

DATE_FORMATS = (
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
)


class CsvImportError(ValueError):
    """The file is not an export billbot can read; nothing was imported."""


def parse_time(value: str, column: str) -> int | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = next((p for p in (_strptime(value, f) for f in DATE_FORMATS) if p), None)
    if parsed is None:
        raise CsvImportError(f"{column}: {value!r} is not a date (use 2024-01-31 12:00 in UTC)")
    return int((parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp())


def _strptime(value: str, pattern: str) -> datetime | None:
    try:
        return datetime.strptime(value, pattern)
    except ValueError:
        return None


def parse_amount(value: str, currency: str, column: str) -> int | None:
    """ "1,234.50" usd -> 123450; "5000" jpy -> 5000. Refuses fractions the currency lacks."""
    if not value:
        return None
    try:
        major = Decimal(value.replace(",", "").replace(" ", ""))
    except InvalidOperation:
        raise CsvImportError(f"{column}: {value!r} is not an amount") from None
    minor = major.scaleb(exponent(currency))
    if minor != minor.to_integral_value():
        raise CsvImportError(
            f"{column}: {value!r} has more decimals than {currency.upper()} allows"
        )
    return int(minor)


def parse_int(value: str, column: str, default: int) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise CsvImportError(f"{column}: {value!r} is not a whole number") from None


def parse_bool(value: str) -> bool:
    return value.strip().lower() in ("true", "yes", "1", "t")


def parse_currency(fields: dict[str, str]) -> str:
    currency = fields.get("currency", "").lower()
    if currency and (len(currency) != 3 or not currency.isalpha()):
        raise CsvImportError(f"Currency: {fields['currency']!r} is not a currency code")
    return currency
