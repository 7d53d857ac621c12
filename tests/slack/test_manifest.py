"""app_manifest.yml is valid for Slack and points every request at /slack/events."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from bot.slack_app import SLACK_EVENTS_PATH

MANIFEST = Path(__file__).resolve().parents[2] / "app_manifest.yml"


SCHEMA_BASE = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"


@pytest.fixture
def validator(reference_dir):
    """Slack's schema, with the versioned schemas it points at served from the local copy."""
    folder = reference_dir / "slack" / "manifest-schema"
    registry = Registry().with_resources(
        (SCHEMA_BASE + path.name, Resource.from_contents(json.loads(path.read_text()), DRAFT7))
        for path in sorted((folder / "schemas").glob("*.json"))
    )
    root = json.loads((folder / "manifest.schema.json").read_text())
    return jsonschema.Draft7Validator(root, registry=registry)


@pytest.fixture
def manifest():
    return yaml.safe_load(MANIFEST.read_text())


def test_schema_accepts_slacks_own_examples_and_rejects_the_invalid_one(validator, reference_dir):
    tests = reference_dir / "slack" / "manifest-schema" / "tests"
    validator.validate(json.loads((tests / "v1_manifest.valid.json").read_text()))
    assert list(validator.iter_errors(json.loads((tests / "v1_manifest.invalid.json").read_text())))


def test_manifest_is_valid(validator, manifest):
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(manifest)]
    assert errors == []


def test_every_request_url_is_the_slack_events_route(manifest):
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls += [
        manifest["settings"]["interactivity"]["request_url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
    ]
    assert urls and all(url == f"https://YOUR-HOST{SLACK_EVENTS_PATH}" for url in urls)


def test_commands_home_tab_and_scopes(manifest):
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [
        "/paid",
        "/tasks",
        "/revenue",
    ]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    assert {"chat:write", "commands", "im:write", "files:write"} <= set(
        manifest["oauth_config"]["scopes"]["bot"]
    )
