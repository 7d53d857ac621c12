"""Storm collapsing: many alerts of one kind waiting for one channel become one summary.

A billing run can fail twenty cards in a minute; twenty messages would bury the channel
(and take twenty seconds at Slack's pace). When more than `threshold` alert posts of one
kind are waiting for a channel within `window` seconds, the sender posts one summary
listing them instead (`handlers.slack.blocks.storm_summary`). The collapsed alerts take the
summary's ts: their thread replies go to the summary's thread, their updates are dropped.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine

from handlers.alerts.render import card_for
from handlers.slack import blocks
from storage import outbox
from storage.alerts import alerts_by_ids
from storage.db import read_scope, session_scope
from storage.models.outbox import OutboxMessage

logger = logging.getLogger(__name__)


def is_storm(times: list[datetime], threshold: int, window: float) -> bool:
    """More than `threshold` of `times` inside some `window` seconds."""
    times = sorted(times)
    start = 0
    for end, moment in enumerate(times):
        while (moment - times[start]).total_seconds() > window:
            start += 1
        if end - start + 1 > threshold:
            return True
    return False


def _storming(waiting: list[OutboxMessage], threshold: int, window: float) -> bool:
    return is_storm([m.created_at for m in waiting], threshold, window)


def collapse_storm(
    engine: Engine, *, channel: str, kind: str, threshold: int, window: float, now: datetime
) -> OutboxMessage | None:
    """The summary row that replaced the waiting posts, or None when there is no storm."""
    with read_scope(engine) as session:
        waiting = outbox.pending_alert_posts(session=session, channel=channel, kind=kind)
        session.expunge_all()
    if not _storming(waiting, threshold, window):
        return None
    with session_scope(engine) as session:
        waiting = outbox.pending_alert_posts(session=session, channel=channel, kind=kind)
        if not _storming(waiting, threshold, window):
            return None  # another sender got there first
        chosen = waiting[: blocks.STORM_MAX_ENTRIES]
        alerts = alerts_by_ids(
            session=session, alert_ids=[m.alert_id for m in chosen if m.alert_id]
        )
        payload = blocks.storm_summary(kind, [card_for(session, alert) for alert in alerts])
        summary = outbox.collapse_into_summary(
            session=session,
            message_ids=[m.id for m in chosen if m.id],
            channel=channel,
            kind=kind,
            payload=payload,
            now=now,
        )
    logger.info(
        "slack.sender.storm",
        extra={
            "channel": channel,
            "kind": kind,
            "collapsed": len(chosen),
            "summary_id": summary.id,
        },
    )
    return summary
