"""Every word billbot shows in Slack, as constants the builders use and tests import.

Placeholders are `str.format` fields; values put into mrkdwn are escaped by the caller.
"""

from __future__ import annotations

PAYMENT_KINDS = frozenset({"payment_failed", "action_required", "uncollectible"})
PLAN_CHANGE_KINDS = frozenset({"upgrade", "downgrade", "plan_changed"})

TITLES = {
    "payment_failed": "Payment failed",
    "action_required": "Payment needs customer authentication",
    "uncollectible": "Invoice marked uncollectible",
    "canceled": "Subscription canceled",
    "cancel_scheduled": "Cancellation scheduled",
    "cancel_undone": "Cancellation undone",
    "upgrade": "Upgrade",
    "downgrade": "Downgrade",
    "plan_changed": "Plan changed",
    "trial_converted": "Trial converted to paid",
    "trial_ending": "Trial ending",
    "refund": "Refund",
}
EMOJI = {
    "payment_failed": ":x:",
    "action_required": ":lock:",
    "uncollectible": ":no_entry:",
    "canceled": ":wave:",
    "cancel_scheduled": ":hourglass_flowing_sand:",
    "cancel_undone": ":tada:",
    "upgrade": ":rocket:",
    "downgrade": ":small_red_triangle_down:",
    "plan_changed": ":twisted_rightwards_arrows:",
    "trial_converted": ":star2:",
    "trial_ending": ":alarm_clock:",
    "refund": ":leftwards_arrow_with_hook:",
}
RECOVERED_TITLE = "Payment recovered"

UNKNOWN = "unknown"
UNKNOWN_CUSTOMER = "Unknown customer"
NO_REASON = "not given"
NO_PLAN = "no subscription"
ONE_OFF_PLAN = "One-off invoice (no subscription)"
ONE_OFF_MRR = "None: a one-off invoice adds no MRR"
NO_MORE_RETRIES = "No more retries"
NO_DUE_DATE = "no due date"
PER_MONTH = "/mo"
ATTEMPT_N = "attempt {n}"
NEXT_RETRY_AT = "Next retry {when}."
REFUNDED_SO_FAR = "{amount} refunded in total"
PAYMENT_METHOD = {True: "On file", False: "Missing"}

F_CUSTOMER = "Customer"
F_AMOUNT = "Amount"
F_ATTEMPT = "Attempt"
F_DECLINE = "Decline reason"
F_NEXT_RETRY = "Next retry"
F_PAID = "Paid"
F_PLAN = "Plan"
F_MRR = "MRR"
F_MRR_AT_RISK = "MRR at risk"
F_MRR_CHANGE = "MRR change"
F_CANCELS_ON = "Cancels on"
F_ENDED = "Ended"
F_REASON = "Reason"
F_TRIAL_ENDS = "Trial ends"
F_PAYMENT_METHOD = "Payment method"
F_REFUNDED = "Refunded"
F_CHARGE = "Charge"
MRR_LABELS = {
    "canceled": "MRR lost",
    "cancel_scheduled": "MRR at risk",
    "cancel_undone": "MRR kept",
    "trial_ending": "MRR if it converts",
}

CTX_RECOVERED = ":moneybag: Recovered {when}"
CTX_HANDLED = ":white_check_mark: Handled by <@{user}> {when}"
CTX_TASK_OPEN = ":clipboard: Follow-up task for <@{user}>, due {due}: _{title}_"
CTX_TASK_DONE = ":ballot_box_with_check: Follow-up task done (<@{user}>): {title}"
CTX_TEST_MODE = ":test_tube: Stripe test mode"

BTN_CREATE_TASK = "Create follow-up task"
BTN_CREATE_TASK_SHORT = "Create task"
BTN_ASSIGN_TO_ME = "Assign to me"
BTN_MARK_HANDLED = "Mark handled"
BTN_OPEN_IN_STRIPE = "Open in Stripe"
BTN_OPEN_INVOICE = "View invoice"

REPLY_ATTEMPT = ":repeat: Attempt {n} failed too: {reason}. {retry}"
REPLY_RECOVERED = ":white_check_mark: Recovered: the invoice was paid ({amount}) {when}"
REPLY_RESCHEDULED = ":hourglass_flowing_sand: Cancellation scheduled again, for {when}."
REPLY_CHANGED = (
    ":information_source: This incident changed; the message above shows where it stands."
)
REPLIES = {
    "action_required": ":lock: The customer now has to authenticate the payment.",
    "uncollectible": ":no_entry: The invoice was marked uncollectible: Stripe stops retrying.",
    "payment_failed": ":x: The payment failed.",
    "canceled": ":wave: The subscription has now ended. MRR lost: {mrr}.",
    "cancel_undone": ":tada: {customer} undid the scheduled cancellation. MRR kept: {mrr}.",
}
REPLY_TASK_CREATED = (
    ":clipboard: <@{actor}> created a follow-up task for <@{user}>, due {due}: *{title}*"
)
REPLY_TASK_TAKEN = ":raising_hand: <@{user}> took the follow-up task, due {due}: *{title}*"

TASK_TITLE = "Follow up: {what} ({customer})"
TASK_TITLE_MAX = 150
TASK_NOTE_MAX = 3000
M_HEADING = "Follow-up task"
M_SUBMIT = "Create task"
M_CLOSE = "Cancel"
M_TITLE = "Title"
M_ASSIGNEE = "Assignee"
M_DUE = "Due date"
M_NOTE = "Note"
M_TITLE_HINT = "What needs to happen"
M_NOTE_HINT = "Anything the assignee should know"
M_ERR_TITLE = "Give the task a title."
M_ERR_DUE_PAST = "Pick today or a later date."
M_ERR_ASSIGNEE = "Pick someone to own the task."

STORM_TITLE = "{what}: {n} customers"
STORM_NOTE = (
    "These arrived together, so they are listed in one message instead of one each. "
    "Updates about any of them are posted in this thread."
)

# Ephemeral answers to clicks that change nothing.
STALE_BUTTON = "That button is not one billbot recognises, so nothing changed."
ALERT_GONE = "That alert no longer exists, so nothing changed."
WRONG_MESSAGE = "That button does not belong to this alert message, so nothing changed."
ALREADY_HANDLED = "This alert was already handled by <@{user}>, so nothing changed."
ALREADY_RECOVERED = "This payment has already been recovered, so nothing changed."
NO_CUSTOMER = "This alert is not about a known customer, so no task can be made from it."
ALREADY_YOURS = "The follow-up task is already assigned to you."
HANDLED_DONE = "Marked handled."
TASK_SAVED = "Follow-up task saved."
SOMETHING_WENT_WRONG = (
    "Something went wrong on billbot's side (reference {ref}). Nothing was changed."
)


def humanize(code: str | None) -> str | None:
    """`too_expensive` -> `Too expensive`; Stripe's reason codes read fine this way."""
    if not code:
        return None
    words = code.replace("_", " ").strip()
    return words[:1].upper() + words[1:]
