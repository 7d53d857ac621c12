"""Exchange rates for showing MRR kept in several currencies in one reporting currency.

A rate is what one unit of a currency is worth in the reporting currency (`eur=1.08`:
€1 = $1.08). Rates come from `FX_RATES` (one rate per currency, for all time) and
`FX_RATES_FILE`, a JSON file that is either the same `{"eur": "1.08"}` or dated:
`{"2025-01-01": {"eur": "1.08"}, "2025-02-01": {"eur": "1.05"}}`, a dated rate applying
from 00:00 UTC of its date until the next one. Where both give a rate, the file wins.
Nothing is ever guessed: without a rate, `rate()` returns None and reports say so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from bot.settings import Settings
from storage.money import exponent


class FxRatesError(ValueError):
    """The rates file cannot be read or is not in either accepted shape."""


@dataclass(frozen=True, slots=True)
class FxRates:
    reporting_currency: str
    fixed: Mapping[str, Decimal] = field(default_factory=dict)
    dated: tuple[tuple[date, Mapping[str, Decimal]], ...] = ()  # oldest first

    def rate(self, currency: str, at: datetime) -> Decimal | None:
        """One unit of `currency` in the reporting currency at `at`, or None if unknown."""
        code = currency.lower()
        if code == self.reporting_currency:
            return Decimal(1)
        for day, rates in reversed(self.dated):
            if day <= at.date() and code in rates:
                return rates[code]
        return self.fixed.get(code)

    def convert(self, minor: Decimal, currency: str, at: datetime) -> Decimal | None:
        """Exact minor units of `currency` to exact minor units of the reporting currency."""
        rate = self.rate(currency, at)
        if rate is None:
            return None
        shift = exponent(self.reporting_currency) - exponent(currency)
        return (minor * rate).scaleb(shift)


def load_fx_rates(settings: Settings) -> FxRates:
    """The rates the settings name; raises FxRatesError for an unreadable rates file."""
    fixed = dict(settings.fx_rates)
    dated: tuple[tuple[date, Mapping[str, Decimal]], ...] = ()
    if settings.fx_rates_file is not None:
        file_fixed, dated = read_rates_file(settings.fx_rates_file)
        fixed.update(file_fixed)
    return FxRates(settings.reporting_currency, fixed, dated)


def read_rates_file(
    path: Path,
) -> tuple[dict[str, Decimal], tuple[tuple[date, Mapping[str, Decimal]], ...]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal, parse_int=Decimal)
    except (OSError, ValueError) as exc:
        raise FxRatesError(f"FX_RATES_FILE {path}: cannot read it as JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise FxRatesError(f"FX_RATES_FILE {path}: expected a JSON object")
    if all(_is_date(key) for key in data) and data:
        dated = []
        for key in sorted(data):
            if not isinstance(data[key], dict):
                raise FxRatesError(f"FX_RATES_FILE {path}: {key} must map currencies to rates")
            dated.append((date.fromisoformat(key), _rates(data[key], path)))
        return {}, tuple(dated)
    return _rates(data, path), ()


def _rates(values: dict[str, object], path: Path) -> dict[str, Decimal]:
    rates = {}
    for code, value in values.items():
        try:
            rate = Decimal(str(value)) if not isinstance(value, bool) else Decimal(0)
        except InvalidOperation:
            rate = Decimal(0)
        if len(code) != 3 or not code.isalpha() or not rate.is_finite() or rate <= 0:
            raise FxRatesError(
                f"FX_RATES_FILE {path}: {code!r}: {value!r} is not a currency with a positive rate"
            )
        rates[code.lower()] = rate
    return rates


def _is_date(key: str) -> bool:
    try:
        date.fromisoformat(key)
    except ValueError:
        return False
    return len(key) == 10
