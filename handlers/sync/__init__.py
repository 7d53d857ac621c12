"""Bringing the store in line with Stripe without webhooks.

- `backfill`: read Stripe's list endpoints (history), page by page, resumable.
- `reconcile`: find events the webhook missed and repair objects that drifted.
- `csv_import`: the same, from Dashboard CSV exports, for teams without an API key.

All three write through the same conversion and version guard as webhooks
(`handlers.stripe.objects.apply_object`), and none of them posts to Slack.
"""
