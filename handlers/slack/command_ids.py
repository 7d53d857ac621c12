"""Ids the slash commands, their buttons and the App Home echo back, and what buttons carry.

`Command` is what registration uses and what tests/test_manifest.py compares with
app_manifest.yml. Button values (and the task row's block id) are small JSON refs, parsed
strictly on the way back and then re-checked against the store by the listener.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handlers.slack.refs import InvalidRef

MAX_REF_CHARS = 255  # a block id's limit, and far more than any ref of ours needs
SLACK_USER_ID = r"^[UW][A-Z0-9]{2,30}$"


class Command(StrEnum):
    PAID = "/paid"
    TASKS = "/tasks"
    REVENUE = "/revenue"


class CommandAction(StrEnum):
    PAID_SHOW = "paid_show_customer"  # one of several matches: show that customer
    PAID_CREATE_TASK = "paid_create_task"  # opens the alerts' task modal for the customer
    PAID_OPEN_IN_STRIPE = "paid_open_in_stripe"  # a link button; Slack still sends a click
    TASK_DONE = "task_list_done"  # "task_done" is the nudge DM's (handlers.slack.ids)
    TASK_REASSIGN = "task_list_reassign"  # a users_select; the task ref is in its block id


class TaskScope(StrEnum):
    """Which list a task button sits in, so the list can be shown again after the click."""

    MINE = "mine"
    ALL = "all"
    USER = "user"  # someone else's: `TaskRef.user`
    HOME = "home"  # the App Home: republished instead of replied to


class _CommandRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def encode(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def decode(cls, raw: object) -> Self:
        if not isinstance(raw, str) or not raw or len(raw) > MAX_REF_CHARS:
            raise InvalidRef("missing or oversized value")
        try:  # JSON mode: strict, yet enum fields accept their values
            return cls.model_validate_json(raw)
        except ValidationError as exc:
            raise InvalidRef(f"not a {cls.__name__}") from exc


class CustomerRef(_CommandRef):
    """The value of /paid's buttons: which customer."""

    customer: str = Field(min_length=5, max_length=255, pattern=r"^cus_[A-Za-z0-9]+$")


class TaskRef(_CommandRef):
    """The value of a task's Done button and the block id of its Reassign select."""

    task: int = Field(gt=0)
    scope: TaskScope = TaskScope.MINE
    user: str | None = Field(default=None, pattern=SLACK_USER_ID)


MENTION = re.compile(r"^<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>$")
