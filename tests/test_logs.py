import logging

from bot.logs import EventFormatter


def record(msg, extra=None, exc_info=None):
    logger = logging.getLogger("t")
    rec = logger.makeRecord("t", logging.INFO, __file__, 1, msg, (), exc_info, extra=extra)
    return rec


def test_extra_fields_are_printed_as_key_value():
    line = EventFormatter("%(levelname)s %(message)s").format(
        record("stripe.event.applied", {"event_id": "evt_1", "type": "invoice.paid"})
    )
    assert line == "INFO stripe.event.applied event_id=evt_1 type=invoice.paid"


def test_plain_messages_are_unchanged():
    assert EventFormatter("%(message)s").format(record("worker.started")) == "worker.started"


def test_traceback_stays_below_the_fields():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        line = EventFormatter("%(message)s").format(
            record("x.failed", {"ref": "r1"}, exc_info=sys.exc_info())
        )
    first, _, rest = line.partition("\n")
    assert first == "x.failed ref=r1"
    assert "RuntimeError: boom" in rest


def test_apscheduler_chatter_is_kept_for_debug():
    from bot.logs import configure_logging

    configure_logging("INFO")
    assert not logging.getLogger("apscheduler").isEnabledFor(logging.INFO)
    assert logging.getLogger("apscheduler").isEnabledFor(logging.WARNING)
