"""Block Kit for the store-versus-Stripe notices: the drift report, and webhook-feed warnings.

Pure functions of small values (`DriftReport`, `WebhookWarning`); they never read the store.
Each returns a chat.postMessage payload `{"text", "blocks"}`; the text is the notification
fallback. Words people read are constants here, so tests import them.
"""

from __future__ import annotations

from typing import Any

from handlers.slack.mrkdwn import clip, esc, slack_time
from handlers.sync.drift import DriftReport
from handlers.sync.webhook_warning import WebhookWarning, WebhookWarningKind
from storage.money import format_money

MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_IDS_SHOWN = 10
Message = dict[str, Any]

DRIFT_HEADER = "The store differed from Stripe"
DRIFT_FALLBACK = "Reconciliation repaired {count} objects and re-queued {events} missed events"
SILENCE_HEADER = "No Stripe webhooks are arriving"
SILENCE_BODY = (
    "No Stripe event has arrived by webhook since {since}, while {active} subscriptions are "
    "active. Check the endpoint in the Stripe Dashboard (Developers → Webhooks: is it enabled, "
    "are deliveries failing?) and that billbot's `/stripe/webhook` is reachable. "
    "`billbot reconcile` fetches what was missed."
)
NEVER = "billbot started storing data"
SIGNATURE_HEADER = "Stripe webhooks are failing their signature check"
SIGNATURE_BODY = (
    "{count} webhook requests were refused for a bad signature since {since}. "
    "`STRIPE_WEBHOOK_SECRET` probably does not match the endpoint's signing secret (a rolled "
    "secret, or another endpoint's). While rolling it, set both: "
    "`STRIPE_WEBHOOK_SECRET=whsec_new,whsec_old`. Stripe retries refused events for three days; "
    "`billbot reconcile` fetches what is older."
)


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150], "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, MAX_SECTION)}}


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": clip(f"*{label}*\n{value}", MAX_FIELD)}
            for label, value in pairs[:10]
        ],
    }


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, MAX_SECTION)}]}


def _ids(ids: list[str]) -> str:
    shown = ", ".join(f"`{esc(i)}`" for i in ids[:MAX_IDS_SHOWN])
    more = len(ids) - MAX_IDS_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def drift_report_message(report: DriftReport) -> Message:
    """The digest-channel message after a reconciliation that found something wrong."""
    missed = sum(report.missed_events.values())
    blocks: list[dict[str, Any]] = [_header(DRIFT_HEADER)]
    if report.drift_count:
        kinds = ", ".join(
            f"{len(ids)} {kind}" for kind, ids in sorted(report.drifted.items()) if ids
        )
        blocks.append(_section(f"*Repaired {report.drift_count} objects* ({kinds})."))
        blocks.append(
            _section(
                "\n".join(
                    f"• {kind}: {_ids(ids)}" for kind, ids in sorted(report.drifted.items()) if ids
                )
            )
        )
    fields: list[tuple[str, str]] = []
    if missed:
        kinds = ", ".join(f"{esc(name)} ×{n}" for name, n in sorted(report.missed_events.items()))
        fields.append(("Missed webhook events", f"{missed} re-queued: {kinds}"))
    for currency, before, after in report.mrr_changes():
        change = format_money(after - before, currency, signed=True)
        fields.append(
            (
                f"MRR ({currency.upper()})",
                f"{format_money(before, currency)} → {format_money(after, currency)} ({change})",
            )
        )
    if fields:
        blocks.append(_fields(fields))
    if report.gone:
        blocks.append(_section(f"*No longer in Stripe:* {_ids(report.gone)}"))
    checked = ", ".join(f"{n} {kind}" for kind, n in sorted(report.checked.items())) or "nothing"
    blocks.append(
        _context(f"Checked {checked} against Stripe · events since {slack_time(report.since)}")
    )
    text = DRIFT_FALLBACK.format(count=report.drift_count, events=missed)
    return {"text": text, "blocks": blocks}


def webhook_warning_message(warning: WebhookWarning) -> Message:
    """The alert-channel message for one webhook-feed incident."""
    since = slack_time(warning.since) if warning.since is not None else NEVER
    if warning.kind is WebhookWarningKind.SILENCE:
        header = SILENCE_HEADER
        body = SILENCE_BODY.format(since=since, active=warning.active_subscriptions)
    else:
        header = SIGNATURE_HEADER
        body = SIGNATURE_BODY.format(count=warning.count, since=since)
    return {"text": header, "blocks": [_header(header), _section(body)]}
