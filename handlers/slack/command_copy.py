"""Every word the slash commands, their buttons and the App Home show, as constants tests import.

Placeholders are `str.format` fields; values put into mrkdwn are escaped by the caller.
"""

from __future__ import annotations

# -- access and errors ------------------------------------------------------------------------

NOT_ALLOWED = (
    "Sorry, billbot's payment data is only open to the people the billing team has allowed. "
    "If you need it, ask whoever runs billbot to add you."
)
NOT_HERE = "Sorry, billbot does not answer here. It works in {channels}."
NOT_HERE_NO_CHANNELS = "Sorry, billbot does not answer here."
PUBLIC_NOT_HERE = (
    "billbot only posts customer details for everyone in {channels}. "
    "Run the command without `public` to see the answer privately."
)
POST_NOT_HERE = "billbot only posts revenue figures in {channels}."
SOMETHING_WENT_WRONG = (
    "Something went wrong on billbot's side (reference {ref}). Nothing was changed."
)
STALE = "That button is not one billbot recognises, so nothing changed."

# -- /paid ------------------------------------------------------------------------------------

PAID_USAGE = (
    "Usage: `/paid EMAIL`, `/paid cus_ID` or `/paid PART OF A NAME`, "
    "and add `public` to post the answer in the channel. "
    "For example: `/paid jane@example.com`"
)
PAID_BAD_QUERY = "That is not something billbot can look up: {reason}."
PAID_NO_MATCH = "No customer matches *{query}*."
PAID_SUGGEST = "Did you mean {suggestions}?"
PAID_NO_SUGGESTION = "Try the customer's email or `cus_` id."
PAID_SEVERAL = "*{n} customers match* {query}"
PAID_SEVERAL_CAPPED = "*More than {n} customers match* {query}: here are the first {shown}."
PAID_SEVERAL_SOME = "*{total} customers match* {query}: here are the first {shown}."
PAID_PICK = "Pick one to see the details, or look up an email or `cus_` id."
PAID_CUSTOMER_GONE = "That customer is no longer in billbot's store."
PAID_PUBLIC_WORD = "public"
PAID_ASKED_BY = "Asked by <@{user}> with `/paid`"

STATUS_LABEL = {
    "current": ":large_green_circle: Current",
    "overdue": ":red_circle: Overdue",
    "cancelled": ":black_circle: Cancelled",
    "trialing": ":large_blue_circle: Trialing",
    "paused": ":double_vertical_bar: Paused",
    "none": ":white_circle: No subscription",
}
DELETED = ":wastebasket: deleted in Stripe"
TEST_MODE = ":test_tube: test mode"

F_MRR = "MRR"
F_LTV = "Lifetime value"
F_LAST_PAYMENT = "Last successful payment"
F_NEXT_ATTEMPT = "Next payment attempt"
MRR_SINCE = "since {when}, was {previous}"
MRR_ALSO = "also {amounts}"
NO_PAYMENT = "none yet"
NONE = "none"

SUBSCRIPTIONS = "*Subscriptions*"
NO_SUBSCRIPTIONS = "*Subscriptions*\nNone."
MORE_LINES = "…and {n} more"
CYCLE = {
    ("day", 1): "daily",
    ("week", 1): "weekly",
    ("month", 1): "monthly",
    ("month", 3): "quarterly",
    ("year", 1): "yearly",
}
CYCLE_N = "every {n} {interval}s"
SEATS = "{n} seats"
RENEWS = "renews {when}"
TRIAL_ENDS = "trial ends {when}"
CANCELS = ":hourglass_flowing_sand: cancels {when}"
ENDED = "ended {when}"
SUB_STATUS = {
    "past_due": ":red_circle: past due",
    "unpaid": ":red_circle: unpaid",
    "trialing": "trialing",
    "paused": "paused",
    "canceled": "cancelled",
    "incomplete": "incomplete",
    "incomplete_expired": "expired before its first payment",
}

INVOICES = "*Open invoices* · {total} owed"
NO_INVOICES = "*Open invoices*\nNone."
INVOICE_OVERDUE = ":warning: overdue"
INVOICE_ATTEMPTS = {0: "not tried yet", 1: "1 attempt"}
INVOICE_ATTEMPTS_N = "{n} attempts"
INVOICE_NEXT = "next try {when}"
INVOICE_DUE = "due {when}"

TASKS = "*Follow-up tasks*"
NO_TASKS = "*Follow-up tasks*\nNone open."
AS_OF = "As of {when}: billbot's copy of Stripe, kept current by webhooks."

BTN_CREATE_TASK = "Create follow-up task"
BTN_OPEN_IN_STRIPE = "Open in Stripe"
BTN_SHOW = "Show"
TASK_ABOUT = "Follow-up for {customer} · {status}"
TASK_TITLE = "Follow up with {customer}"

# -- /tasks -----------------------------------------------------------------------------------

TASKS_USAGE = (
    "Usage: `/tasks` for yours, `/tasks all` for everyone's, `/tasks @someone` for theirs."
)
TASKS_MINE = "*Your open follow-ups* ({n})"
TASKS_ALL = "*All open follow-ups* ({n})"
TASKS_USER = "*<@{user}>'s open follow-ups* ({n})"
TASKS_NONE_MINE = "You have no open follow-ups. :tada:"
TASKS_NONE_ALL = "Nobody has an open follow-up. :tada:"
TASKS_NONE_USER = "<@{user}> has no open follow-ups."
TASKS_CAPPED = "Showing the {shown} due soonest of {n}."
TASK_DUE = "due {when}"
TASK_LATE = ":warning: was due {when}"
TASK_NO_DUE = "no due date"
TASK_FOR = "for <@{user}>"
TASK_ALERT = "<{url}|{label}>"
TASK_NO_CUSTOMER = "no customer"
BTN_DONE = "Done"
BTN_OPEN_ALERT = "Open alert"
REASSIGN_PLACEHOLDER = "Reassign to…"
TASK_DONE_NOTE = ":ballot_box_with_check: Done: _{title}_"
TASK_REASSIGNED_NOTE = ":arrow_right: Reassigned to <@{user}>: _{title}_"
TASK_GONE = "That task no longer exists, so nothing changed."
TASK_ALREADY_DONE = "That task was already done (by <@{user}>), so nothing changed."
TASK_SAME_ASSIGNEE = "The task is already <@{user}>'s."

# -- /revenue ---------------------------------------------------------------------------------

REVENUE_USAGE = (
    "Usage: `/revenue`, `/revenue last month` or `/revenue YYYY-MM` (e.g. `/revenue 2026-03`)."
)
REVENUE_BAD_PERIOD = "{reason}."
REVENUE_CHART_TITLE = "MRR, last 12 months ({currency})"
REVENUE_CHART_FAILED = (
    "The MRR chart could not be shared here ({error}). "
    "Invite billbot to this channel, or run `/revenue` where billbot is a member."
)

# -- App Home ---------------------------------------------------------------------------------

HOME_TITLE = "billbot"
HOME_MRR = "*MRR* {mrr}   ·   *Active customers* {active}"
HOME_MRR_EXCLUDED = ":warning: No exchange rate for {currencies}: left out of these figures."
HOME_TASKS = "Your open follow-ups"
HOME_NO_TASKS = "You have no open follow-ups. :tada:"
HOME_ALERTS = "Latest alerts"
HOME_NO_ALERTS = "No alerts yet."
HOME_UPDATED = "Updated {when}. This tab refreshes each time you open it."
HOME_HINT = (
    "Ask about a customer with `/paid`, list follow-ups with `/tasks`, see revenue with `/revenue`."
)
ALERT_STATE = {
    "open": ":red_circle: open",
    "task": ":clipboard: task for <@{user}>",
    "handled": ":white_check_mark: handled by <@{user}>",
    "recovered": ":moneybag: recovered",
}
