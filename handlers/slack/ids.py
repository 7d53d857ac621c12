"""Every id Slack echoes back to us: action ids, view callback ids, block ids of the task modal.

Listeners match on these and the Block Kit builders write them, so a rename is one edit.
"""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    CREATE_TASK = "alert_create_task"  # opens the task modal
    ASSIGN_TO_ME = "alert_assign_to_me"
    MARK_HANDLED = "alert_mark_handled"
    OPEN_IN_STRIPE = "alert_open_in_stripe"  # a link button; Slack still sends a block_actions
    OPEN_INVOICE = "alert_open_invoice"  # a link button too
    TRIAL_CREATE_TASK = "trial_create_task"  # trial reminder list: opens the task modal
    TASK_DONE = "task_done"  # task nudge DM: closes the task


class CallbackId(StrEnum):
    TASK_MODAL = "task_modal"


class TaskModalBlock(StrEnum):
    """Block ids (and, with `_input`, action ids) of the task modal's inputs."""

    TITLE = "task_title"
    ASSIGNEE = "task_assignee"
    DUE = "task_due"
    NOTE = "task_note"

    @property
    def action_id(self) -> str:
        return f"{self.value}_input"
