"""`billbot lookup` end to end: argv in, text or JSON and an exit code out, on a real store."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.commands.lookup import DID_YOU_MEAN, NO_MATCH, USAGE
from storage.db import session_scope
from storage.money import format_money
from tests import store_rows as rows

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def cli(engine, database_url, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BILLBOT_TIMEZONE", "Asia/Tokyo")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["lookup", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def seed(engine) -> None:
    with session_scope(engine) as session:
        rows.customer(session, id="cus_acme", email="Billing@Acme.test", name="Acme Corp", currency="usd",
                      livemode=True, at=NOW - timedelta(hours=2))  # fmt: skip
        rows.subscription(session, id="sub_acme", customer_id="cus_acme", status="past_due",
                          items=[{"unit_amount": 4900, "quantity": 2, "plan_name": "Team"}],
                          current_period_end=NOW + timedelta(days=10), at=NOW - timedelta(hours=3))  # fmt: skip
        rows.invoice(session, id="in_acme", customer_id="cus_acme", subscription_id="sub_acme", amount=9800,
                     attempt_count=2, next_payment_attempt=NOW + timedelta(days=2), at=NOW - timedelta(hours=1))  # fmt: skip
        rows.charge(
            session, id="ch_acme", customer_id="cus_acme", amount=9800, at=NOW - timedelta(days=31)
        )
        rows.customer(session, id="cus_acme_test", email="billing@acme.test", name="Acme Corp (test)",
                      livemode=False, at=NOW - timedelta(days=1))  # fmt: skip


def test_json_output_has_the_promised_shape(engine, cli):
    seed(engine)
    code, out, _ = cli("billing@ACME.test ", "--json")
    assert code == 0
    answer = json.loads(out)
    assert [m["customer_id"] for m in answer["matches"]] == ["cus_acme", "cus_acme_test"]
    match = answer["matches"][0]
    assert {"customer_id", "email", "name", "status", "mrr", "lifetime_value", "subscriptions",
            "open_invoices", "last_payment", "as_of", "livemode", "mrr_by_currency"} <= set(match)  # fmt: skip
    assert (match["status"], match["livemode"]) == ("overdue", True)
    assert match["mrr"] == {"amount": 9800, "currency": "usd"}
    assert match["lifetime_value"] == {"amount": 9800, "currency": "usd"}
    sub = match["subscriptions"][0]
    assert {k: sub[k] for k in ("id", "status", "plan", "interval", "interval_count", "quantity", "mrr")} == {
        "id": "sub_acme", "status": "past_due", "plan": "Team", "interval": "month", "interval_count": 1,
        "quantity": 2, "mrr": {"amount": 9800, "currency": "usd"},
    }  # fmt: skip
    assert sub["cancel_at_period_end"] is False and sub["trial_end"] is None
    assert ISO_UTC.match(sub["current_period_end"])
    invoice = match["open_invoices"][0]
    assert {k: invoice[k] for k in ("id", "status", "amount_remaining", "currency", "attempt_count", "due_date")} == {
        "id": "in_acme", "status": "open", "amount_remaining": 9800, "currency": "usd", "attempt_count": 2, "due_date": None,
    }  # fmt: skip
    assert ISO_UTC.match(invoice["next_payment_attempt"])
    assert match["last_payment"]["amount"] == 9800 and ISO_UTC.match(match["last_payment"]["at"])
    assert match["as_of"] == (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert answer["matches"][1]["status"] == "none" and answer["matches"][1]["livemode"] is False


def test_human_output_uses_money_format_and_the_configured_time_zone(engine, cli):
    seed(engine)
    code, out, _ = cli("cus_acme")
    assert code == 0
    assert "Acme Corp <Billing@Acme.test>  cus_acme" in out
    assert "overdue" in out and format_money(9800, "usd") in out
    assert "JST" in out and "UTC" not in out
    assert "in_acme  open  OVERDUE" in out and "2 attempt(s)" in out


def test_name_part_with_several_matches(engine, cli):
    seed(engine)
    code, out, _ = cli("acme", "corp", "--json", "--limit", "1")
    answer = json.loads(out)
    assert code == 0 and len(answer["matches"]) == 1 and answer["total"] == 2
    code, out, _ = cli("acme", "--limit", "1")
    assert "Showing 1 of 2 matches" in out


def test_no_match_says_so_and_suggests(engine, cli):
    seed(engine)
    code, out, _ = cli("billing@acme.tset")
    assert code == 1
    assert NO_MATCH.format(query="billing@acme.tset") in out
    assert DID_YOU_MEAN.format(suggestions="billing@acme.test") in out
    code, out, _ = cli("billing@acme.tset", "--json")
    assert (
        code == 1
        and json.loads(out)["matches"] == []
        and json.loads(out)["suggestions"] == ["billing@acme.test"]
    )


@pytest.mark.parametrize("query", ["", "   ", "%%%", "<@U0123ABC>", "x" * 600])
def test_empty_or_garbled_query_prints_usage(engine, cli, query):
    code, out, err = cli(query)
    assert code == 2 and out == ""
    assert USAGE in err


@pytest.mark.parametrize(
    "query", ["'; DROP TABLE customer; --", "%", "_", "名前", "a\\%b", '"quoted"']
)
def test_hostile_input_is_data(engine, cli, query):
    seed(engine)
    code, _, err = cli(query, "--json")
    assert code in (1, 2), err
    assert cli("cus_acme", "--json")[0] == 0  # the store is intact


def test_unmigrated_store_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    assert main(["lookup", "jane@example.com"]) == 3
    assert "billbot migrate" in capsys.readouterr().err


def test_console_script(sqlite_url, sqlite_engine, tmp_path):
    seed(sqlite_engine)
    billbot = Path(sys.executable).with_name("billbot")
    result = subprocess.run(
        [str(billbot), "lookup", "cus_acme", "--json"], capture_output=True, text=True, cwd=tmp_path,
        env={"DATABASE_URL": sqlite_url, "PATH": "/usr/bin:/bin"}, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["matches"][0]["status"] == "overdue"
