"""Text formatting shared by the Block Kit builders: mrkdwn escaping, Slack date tokens,
Stripe dashboard links, and the plain-text rendering console mode prints."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from typing import Any

from handlers.slack import copy
from storage.money import format_money


def esc(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_time(moment: datetime) -> str:
    """A moment each reader sees in their own time zone; the fallback is UTC."""
    unix = int(moment.timestamp())
    fallback = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{unix}^{{date_short_pretty}} at {{time}}|{fallback}>"


def slack_day(day: date) -> str:
    """A calendar date. Rendered from noon UTC, so it is the same day from UTC-11 to UTC+11."""
    unix = int(datetime.combine(day, time(12, 0), UTC).timestamp())
    return f"<!date^{unix}^{{date_short_pretty}}|{day.isoformat()}>"


def money_text(amount: int | None, currency: str | None) -> str:
    return copy.UNKNOWN if amount is None or not currency else format_money(amount, currency)


def mrr_text(amount: int | None, currency: str | None) -> str:
    if amount is None or not currency:
        return copy.UNKNOWN
    return f"{format_money(amount, currency)}{copy.PER_MONTH}"


def dashboard_customer_url(customer_id: str, *, livemode: bool) -> str:
    mode = "" if livemode else "test/"
    return f"https://dashboard.stripe.com/{mode}customers/{customer_id}"


_SLACK_TOKEN = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


def unslack(text: str) -> str:
    """Slack's mrkdwn tokens as a person reads them in a log: a date token becomes its UTC
    fallback, `<url|label>` becomes `label (url)`, `<@U123>` becomes `@U123`."""

    def token(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("!date^"):
            return label or target
        if target.startswith(("@", "#")):
            return f"#{label}" if target.startswith("#") and label else target
        return f"{label} ({target})" if label else target

    plain = _SLACK_TOKEN.sub(token, text)
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def plain_rendering(payload: dict[str, Any], *, channel: str, operation: str) -> str:
    """A message as readable text, for console mode (no SLACK_BOT_TOKEN)."""
    return unslack(_plain_lines(payload, channel=channel, operation=operation))


def _plain_lines(payload: dict[str, Any], *, channel: str, operation: str) -> str:
    lines = [f"── {operation} → {channel} ──", payload.get("text", "")]
    for block in payload.get("blocks", []):
        if block.get("text"):
            lines.append(block["text"]["text"])
        lines += [_plain_field(field["text"]) for field in block.get("fields", [])]
        lines += [
            element.get("text", "")
            for element in block.get("elements", [])
            if block["type"] == "context"
        ]
        if block["type"] == "actions":
            lines.append("  ".join(f"[{b['text']['text']}]" for b in block["elements"]))
    return "\n".join(line for line in lines if line)


def _plain_field(text: str) -> str:
    label, _, value = text.partition("\n")
    return f"{label.strip('*')}: {value.replace(chr(10), ' · ')}"
