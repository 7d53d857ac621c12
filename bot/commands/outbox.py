"""`billbot outbox`: what is waiting for Slack or was given up on; `billbot outbox retry`
re-queues what the sender gave up on (after fixing a channel or a token, say)."""

from __future__ import annotations

import argparse

from sqlalchemy import Engine
from sqlmodel import Session

from bot.settings import Settings
from storage import outbox
from storage.db import make_engine, read_scope, session_scope
from storage.models.outbox import Operation, OutboxMessage, OutboxStatus
from storage.types import utcnow

ERROR_CHARS = 200


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "outbox", help="list Slack messages in the outbox; `outbox retry` re-queues failed ones"
    )
    parser.add_argument(
        "--failed", action="store_true", help="only failed messages and those waiting to retry"
    )
    parser.add_argument("--limit", type=_positive, default=50, help="how many, newest first (50)")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    retry = actions.add_parser("retry", help="re-queue one failed message, or all of them")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "message_id", nargs="?", type=_message_id, metavar="ID", help="id from `billbot outbox`"
    )
    which.add_argument("--all-failed", action="store_true", help="every failed message")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _message_id(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an outbox message id (a number; see `billbot outbox`)"
        )
    return int(value)


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        if args.action == "retry":
            return _retry_all(engine) if args.all_failed else _retry_one(engine, args.message_id)
        with read_scope(engine) as session:
            messages = outbox.list_messages(
                session=session, failed_only=args.failed, limit=args.limit
            )
            counts = outbox.count_by_status(session=session)
            session.expunge_all()  # keep the loaded values readable after the read-only scope
        summary = ", ".join(f"{status} {count}" for status, count in sorted(counts.items()))
        print(f"outbox: {summary or 'empty'}")
        _print_messages(messages, failed=args.failed)
        return 0
    finally:
        engine.dispose()


def _retry_one(engine: Engine, message_id: int) -> int:
    with session_scope(engine) as session:
        status = outbox.message_status(session=session, message_id=message_id)
        if status is None:
            print(f"billbot: no outbox message {message_id} (see `billbot outbox`)")
            return 1
        if status != OutboxStatus.FAILED:
            print(f"outbox message {message_id} is {status}, not failed; nothing to retry")
            return 1
        requeued = outbox.requeue_failed(session=session, now=utcnow(), message_ids=[message_id])
        waiting_for = _failed_alert_post(session, message_id)
    if not requeued:
        print(
            f"outbox message {message_id} is an older update of its alert, overtaken by a "
            "newer one; marked superseded instead of sent again"
        )
        return 0
    print(f"outbox message {message_id} re-queued; the sender delivers it next")
    if waiting_for is not None:
        print(
            f"  it needs its alert's own message, which failed too: "
            f"`billbot outbox retry {waiting_for}` (or `--all-failed`)"
        )
    return 0


def _failed_alert_post(session: Session, message_id: int) -> int | None:
    """The id of the failed post an update or reply depends on; the sender fails the
    update or reply again at once while that post is not delivered."""
    message = session.get(OutboxMessage, message_id)
    if message is None or message.alert_id is None or message.operation == Operation.POST:
        return None
    post = outbox.alert_post(session=session, alert_id=message.alert_id)
    return post.id if post is not None and post.status == OutboxStatus.FAILED else None


def _retry_all(engine: Engine) -> int:
    with session_scope(engine) as session:
        failed = outbox.count_by_status(session=session).get(OutboxStatus.FAILED, 0)
        requeued = outbox.requeue_failed(session=session, now=utcnow())
    if not failed:
        print("no failed outbox messages; nothing to retry")
        return 0
    print(f"re-queued {requeued} failed outbox message(s); the sender delivers them next")
    if failed > requeued:
        print(
            f"  {failed - requeued} older alert update(s) overtaken by newer ones were "
            "marked superseded instead"
        )
    return 0


def _print_messages(messages: list[OutboxMessage], *, failed: bool) -> None:
    if not messages:
        print("no failed messages" if failed else "no messages")
        return
    for message in messages:
        line = (
            f"{message.id}  {message.kind}  {message.operation}  {message.channel}  "
            f"{message.status}  attempts={message.attempts}  "
            f"created={message.created_at:%Y-%m-%dT%H:%M:%SZ}"
        )
        if message.status == OutboxStatus.PENDING and message.next_attempt_at is not None:
            line += f"  next_attempt={message.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}"
        print(line)
        error = (message.last_error or "").strip()
        if error and message.status in (OutboxStatus.FAILED, OutboxStatus.PENDING):
            print(f"    error: {error.splitlines()[0][:ERROR_CHARS]}")
