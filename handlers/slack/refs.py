"""What a button or a modal carries: ids only, as small JSON, validated on the way back.

Slack echoes `value` and `private_metadata` unchanged, but anyone who can post to our
endpoint with a valid signature (or a curious user with a proxy) can change them, so each
is parsed strictly here and then re-checked against the store by the listener.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_VALUE_CHARS = 2000  # Slack's limit for a button value


class InvalidRef(ValueError):
    """A button value or private_metadata that is not one of ours."""


class _Ref(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def encode(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def decode(cls, raw: object) -> _Ref:
        if not isinstance(raw, str) or not raw or len(raw) > MAX_VALUE_CHARS:
            raise InvalidRef("missing or oversized value")
        try:
            return cls.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as exc:
            raise InvalidRef(f"not a {cls.__name__}") from exc


class AlertRef(_Ref):
    """The value of every button on an alert."""

    alert: int = Field(gt=0)


class TaskModalRef(_Ref):
    """The task modal's private_metadata: the alert it came from, or just the customer."""

    alert: int | None = Field(default=None, gt=0)
    customer: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=r"^cus_[A-Za-z0-9]+$"
    )

    @model_validator(mode="after")
    def _one_subject(self) -> TaskModalRef:
        if self.alert is None and self.customer is None:
            raise ValueError("a task needs an alert or a customer")
        return self


class TrialRef(_Ref):
    """The value of a trial reminder's "Create follow-up task" button."""

    customer: str = Field(min_length=1, max_length=255, pattern=r"^cus_[A-Za-z0-9]+$")
    subscription: str = Field(min_length=1, max_length=255, pattern=r"^sub_[A-Za-z0-9]+$")


class TaskRef(_Ref):
    """The value of a task nudge's "Done" button."""

    task: int = Field(gt=0)
