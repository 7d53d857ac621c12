"""`billbot backfill`, `import-csv` and `reconcile`: arguments, clear errors, progress output."""

from __future__ import annotations

import io

import pytest

from bot.cli import build_parser, main
from bot.commands.backfill import run_backfill
from bot.commands.import_csv import run_import
from bot.commands.reconcile import run_reconcile_command
from bot.settings import Settings
from tests.fakes import stripe_objects as so
from tests.sync.conftest import API_KEY


@pytest.fixture
def env(monkeypatch, tmp_path, sqlite_url):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("STRIPE_API_KEY", "STRIPE_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    return monkeypatch


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_backfill_without_a_key_names_the_variable(env, capsys):
    assert main(["backfill"]) == 2
    assert "STRIPE_API_KEY is not set" in capsys.readouterr().err


def test_backfill_refuses_a_publishable_key(env, capsys):
    env.setenv("STRIPE_API_KEY", "pk_test_123")
    assert main(["backfill"]) == 2
    assert "STRIPE_API_KEY must be a secret key (sk_...)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["backfill", "--since", "last tuesday"],
            "argument --since: 'last tuesday' is not a date; use YYYY-MM-DD",
        ),
        (["backfill", "--since", "2999-01-01"], "is in the future"),
        (
            ["backfill", "--only", "customers,payouts"],
            "unknown --only value 'payouts'; choose from customers,",
        ),
        (["import-csv", "--kind", "charges", "x.csv"], "invalid choice: 'charges'"),
    ],
)
def test_bad_arguments_are_refused_clearly(env, capsys, argv, expected):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert expected in capsys.readouterr().err


def backfill_args(*argv: str):
    return build_parser().parse_args(["backfill", *argv])


def test_backfill_command_reads_and_reports_plain_lines(settings, stand_in, clock, recorder):
    stand_in.add("customers", *[so.customer(n, created=so.EPOCH + n * 86400) for n in range(5)])
    err = io.StringIO()

    code = run_backfill(
        backfill_args("--only", "customers", "--since", "2024-01-03"),
        settings,
        apply_object=recorder,
        stderr=err,
        clock=clock,
        sleep=clock.sleep,
    )

    assert code == 0
    lines = err.getvalue().splitlines()
    assert [line.split() for line in lines[:-1]] == [
        ["customers", "3", "read", "3", "written"],  # after the page
        ["customers", "3", "read", "3", "written", "done"],
    ]
    assert lines[-1] == (
        "backfill done: 3 objects read, 3 written, 0 MRR ledger lines (nothing posted to Slack)"
    )
    assert "\r" not in err.getvalue()
    assert stand_in.served("customers")[0].query["created[gte]"] == str(so.EPOCH + 2 * 86400)


def test_backfill_progress_on_a_terminal_rewrites_one_line(settings, stand_in, clock, recorder):
    stand_in.add("customers", *[so.customer(n, created=so.EPOCH + n) for n in range(3)])
    term = Terminal()
    args = backfill_args("--only", "customers")
    assert (
        run_backfill(
            args, settings, apply_object=recorder, stderr=term, clock=clock, sleep=clock.sleep
        )
        == 0
    )
    assert term.getvalue().count("\r") == 2 and "customers" in term.getvalue()


def test_backfill_command_says_how_to_resume(settings, stand_in, clock, recorder):
    stand_in.add("customers", so.customer(1, created=so.EPOCH))
    stand_in.fail(from_request=1, kind="drop")
    err = io.StringIO()
    args = backfill_args("--only", "customers")
    assert (
        run_backfill(
            args, settings, apply_object=recorder, stderr=err, clock=clock, sleep=clock.sleep
        )
        == 1
    )
    assert "run it again to resume from the start" in err.getvalue()
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]  # 8 attempts, capped backoff


def test_import_csv_command(settings, tmp_path, recorder):
    path = tmp_path / "customers.csv"
    path.write_text(
        "id,Email,Name,Created (UTC)\ncus_1,a@example.com,A,2024-01-01 00:00\n", encoding="utf-8"
    )
    err = io.StringIO()
    args = build_parser().parse_args(["import-csv", "--kind", "customers", str(path)])
    assert run_import(args, settings, apply_object=recorder, stderr=err) == 0
    assert err.getvalue().strip() == "imported 1 customers from customers.csv: 1 written"

    path.write_text("id,Email\n", encoding="utf-8")
    args = build_parser().parse_args(["import-csv", "--kind", "invoices", str(path)])
    assert run_import(args, settings, apply_object=recorder, stderr=err) == 1
    assert "missing column 'Customer' or 'Customer ID'" in err.getvalue()

    args = build_parser().parse_args(
        ["import-csv", "--kind", "invoices", str(tmp_path / "nope.csv")]
    )
    assert run_import(args, settings, apply_object=recorder, stderr=err) == 2


def test_reconcile_command_reports_no_drift(settings, stand_in, clock, recorder):
    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["reconcile"])
    code = run_reconcile_command(
        args,
        settings,
        apply_object=recorder,
        stdout=out,
        stderr=err,
        clock=clock,
        sleep=clock.sleep,
    )
    assert code == 0
    assert out.getvalue().splitlines() == [
        "checked nothing against Stripe",
        "no drift: the store matches Stripe",
    ]


def test_reconcile_without_a_key(env, capsys):
    assert main(["reconcile"]) == 2
    assert "STRIPE_API_KEY is not set" in capsys.readouterr().err


def test_settings_point_the_client_at_the_stand_in(stand_in):
    settings = Settings(stripe_api_key=API_KEY, stripe_api_base=stand_in.url + "/")
    from bot.stripe_client import make_stripe_client

    make_stripe_client(settings).v1.customers.list({"limit": 1})
    assert stand_in.requests[0].authorization == f"Bearer {API_KEY}"


def test_reconcile_command_queues_the_report_and_says_so(settings, stand_in, clock, recorder):
    now = int(clock.now().timestamp())
    customer = so.customer(1, created=so.EPOCH)
    stand_in.add("events", so.event(1, type="customer.updated", obj=customer, created=now - 60))
    out = io.StringIO()
    digest = settings.model_copy(update={"slack_channel_digest": "#digest"})

    code = run_reconcile_command(
        build_parser().parse_args(["reconcile"]),
        digest,
        apply_object=recorder,
        stdout=out,
        clock=clock,
        sleep=clock.sleep,
        now=clock.now,
    )

    assert code == 0
    assert out.getvalue().splitlines()[1:] == [
        "Re-queued 1 missed webhook events: customer.updated ×1.",
        "drift report queued for #digest",
    ]
