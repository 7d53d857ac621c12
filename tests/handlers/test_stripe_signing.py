"""Our signing helper signs exactly as Stripe does: stripe-python's own check accepts it."""

from __future__ import annotations

import json

import pytest
import stripe

from tests import factories as f
from tests.stripe_signing import signature_header, signed_request


def test_stripe_library_verifies_our_signature():
    body, headers = signed_request(
        f.event("customer.created", f.customer(), created=f.T0, api_version=f.NEW), "whsec_a"
    )
    assert stripe.WebhookSignature.verify_header(
        body.decode(), headers["Stripe-Signature"], "whsec_a", tolerance=300
    )


def test_one_v1_per_secret_while_rolling():
    header = signature_header(b"{}", ["whsec_old", "whsec_new"], timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and header.count(",v1=") == 2
    for secret in ("whsec_old", "whsec_new"):
        assert stripe.WebhookSignature.verify_header("{}", header, secret, tolerance=None)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header("{}", header, "whsec_other", tolerance=None)


def test_a_changed_body_no_longer_verifies():
    body, headers = signed_request({"id": "evt_1", "object": "event"}, "whsec_a")
    reserialised = json.dumps(json.loads(body))
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(
            reserialised, headers["Stripe-Signature"], "whsec_a", tolerance=300
        )


def test_matches_stripes_published_vector(reference_dir):
    vectors = json.loads((reference_dir / "stripe" / "webhook_signature_vectors.json").read_text())
    valid = next(case for case in vectors["cases"] if case["name"] == "valid")
    header = signature_header(
        vectors["payload_exact_bytes"], vectors["secret"], timestamp=valid["t"]
    )
    assert header == valid["header"]


def test_no_secret_is_an_error():
    with pytest.raises(ValueError, match="secret"):
        signature_header(b"{}", [])
