from decimal import Decimal

import pytest

from storage.money import Money, exponent, format_money


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1500, "usd", "$15.00"),
        (5000, "jpy", "¥5,000"),
        (5000, "JPY", "¥5,000"),
        (123456789, "eur", "€1,234,567.89"),
        (1500, "kwd", "KWD 1.500"),
        (5, "bhd", "BHD 0.005"),
        (-2000, "usd", "-$20.00"),
        (250000, "krw", "₩250,000"),
        (99, "xof", "XOF 99"),
        (100, "isk", "ISK 1.00"),
        (0, "gbp", "£0.00"),
    ],
)
def test_format_money(amount, currency, shown):
    assert format_money(amount, currency) == shown


def test_decimal_amounts_round_once_half_even():
    assert format_money(Decimal("8333.5"), "usd") == "$83.34"
    assert format_money(Decimal("8332.5"), "usd") == "$83.32"


def test_signed_shows_plus():
    assert format_money(9000, "usd", signed=True) == "+$90.00"


def test_money_refuses_floats_and_mixed_currencies():
    with pytest.raises(TypeError):
        Money(15.0, "usd")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Money(1, "usd") + Money(1, "eur")
    assert Money(100, "USD") + Money(50, "usd") == Money(150, "usd")


@pytest.mark.parametrize("currency", ["usd", "JPY", "kwd", "isk", "chf", "xof"])
def test_format_money_shows_the_exact_decimal_amount(currency):
    """The integer arithmetic gives what formatting the exact Decimal amount gives."""
    places = exponent(currency)
    for minor in [*range(-1100, 1100, 7), 10**places, 10**9 + 1, -(10**15) - 99, 123456789012]:
        decimal = f"{Decimal(abs(minor)).scaleb(-places):,.{places}f}"
        assert format_money(minor, currency).endswith(decimal)
        assert format_money(minor, currency).startswith("-") == (minor < 0)
