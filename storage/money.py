"""Money: integer minor units plus an ISO currency code, and the one function that shows it.

Stripe sends every amount as an integer in the currency's smallest unit. Most currencies
have two decimals; Stripe's zero-decimal currencies have none (¥5,000 is 5000) and its
three-decimal currencies have three. Nothing in billbot turns an amount into a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])

SYMBOLS = {
    "usd": "$",
    "eur": "€",
    "gbp": "£",
    "jpy": "¥",
    "cny": "CN¥",
    "inr": "₹",
    "krw": "₩",
    "vnd": "₫",
    "ils": "₪",
    "ngn": "₦",
    "php": "₱",
    "thb": "฿",
    "try": "₺",
    "uah": "₴",
    "cad": "CA$",
    "aud": "A$",
    "nzd": "NZ$",
    "hkd": "HK$",
    "mxn": "MX$",
    "brl": "R$",
    "chf": "CHF ",
}


def exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has in Stripe's API."""
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


@dataclass(frozen=True, slots=True)
class Money:
    amount: int  # minor units
    currency: str  # lowercase ISO 4217, as Stripe sends it

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int):
            raise TypeError(
                f"Money amounts are integer minor units, got {type(self.amount).__name__}"
            )
        object.__setattr__(self, "currency", self.currency.lower())

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} and {other.currency}")

    def as_json(self) -> dict[str, int | str]:
        return {"amount": self.amount, "currency": self.currency}

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def to_major(amount: int | Decimal, currency: str) -> Decimal:
    """Minor units to a Decimal in major units, exactly."""
    return Decimal(amount).scaleb(-exponent(currency))


def round_minor(amount: Decimal) -> int:
    """Round an exact (Decimal) minor-unit amount once, when it has to become an integer."""
    return int(amount.to_integral_value(rounding=ROUND_HALF_EVEN))


def format_money(amount: int | Decimal, currency: str, *, signed: bool = False) -> str:
    """What people read: `$15.00` from 1500 usd, `¥5,000` from 5000 jpy, `KWD 1.500` from 1500 kwd.

    Decimal amounts (an exact MRR share, say) are rounded half-even to the minor unit here,
    the one place where rounding happens for display.
    """
    code = currency.lower()
    places = exponent(code)
    minor = amount if isinstance(amount, int) else round_minor(Decimal(amount))
    sign = "-" if minor < 0 else ("+" if signed and minor > 0 else "")
    # Integer arithmetic, not a Decimal: this runs for every amount a message or timeline
    # entry shows (about 17,000 times per 20,000 bench events).
    whole, fraction = divmod(abs(minor), 10**places)
    number = f"{whole:,}.{str(fraction).zfill(places)}" if places else f"{whole:,}"
    symbol = SYMBOLS.get(code)
    if symbol is None:
        return f"{sign}{code.upper()} {number}"
    return f"{sign}{symbol}{number}"
