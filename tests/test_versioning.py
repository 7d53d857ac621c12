from datetime import UTC, datetime, timedelta

from storage.versioning import Version, should_replace

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def v(at=T, event="evt_1", state=None, progress=0):
    return Version(at=at, event_id=event, state=state, progress=progress)


def test_nothing_stored_accepts():
    assert should_replace("subscription", None, v())


def test_newer_replaces_older_never():
    assert should_replace("invoice", v(event="a"), v(at=T + timedelta(seconds=1), event="b"))
    assert not should_replace("invoice", v(event="a"), v(at=T - timedelta(seconds=1), event="b"))


def test_same_event_twice_is_a_no_op():
    assert not should_replace("invoice", v(event="a", state="open"), v(event="a", state="paid"))


def test_tie_terminal_state_wins_both_orders():
    active, canceled = v(event="u", state="active"), v(event="d", state="canceled")
    assert should_replace("subscription", active, canceled)
    assert not should_replace("subscription", canceled, active)


def test_tie_paid_invoice_wins_over_open():
    assert not should_replace("invoice", v(event="p", state="paid"), v(event="o", state="open"))


def test_tie_same_state_uses_progress_then_delivery_order():
    assert not should_replace(
        "invoice", v(event="a", state="open", progress=2), v(event="b", state="open", progress=1)
    )
    assert should_replace(
        "invoice", v(event="a", state="open", progress=1), v(event="b", state="open", progress=1)
    )
