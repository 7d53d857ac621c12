"""Our test requests are signed and shaped the way Slack's are (shared/reference/slack/payloads)."""

from __future__ import annotations

import json

from handlers.slack.refs import AlertRef
from tests.slack.signing import block_actions, slack_headers, view_submission


def test_signature_matches_slacks_vectors(reference_dir):
    vectors = json.loads(
        (reference_dir / "slack" / "payloads" / "signed_requests.vectors.json").read_text()
    )
    for name in ("slash_command", "block_actions"):
        vector = vectors[name]
        headers = slack_headers(
            vector["body"], secret=vectors["signing_secret"], timestamp=int(vectors["timestamp"])
        )
        assert headers["X-Slack-Signature"] == vector["x_slack_signature"], name


def test_payloads_have_the_keys_slack_sends(reference_dir):
    payloads = reference_dir / "slack" / "payloads"
    real_click = json.loads(
        (payloads / "block_actions_with_message.from_bolt_tests.json").read_text()
    )["payload"]
    ours = block_actions(
        action_id="a", value=AlertRef(alert=1).encode(), user="U1", channel="C1", message_ts="1.2"
    )
    assert set(real_click) <= set(ours)
    assert set(real_click["container"]) <= set(ours["container"])
    assert set(real_click["actions"][0]) <= set(ours["actions"][0])
    real_submit = json.loads((payloads / "view_submission.from_bolt_tests.json").read_text())[
        "payload"
    ]
    assert set(real_submit) <= set(view_submission(view={}, user="U1", values={}))
