"""Bringing the store in line with Stripe without webhooks, and watching the webhook feed.

- `backfill`: read Stripe's list endpoints (history), page by page, resumable.
- `csv_import`: the same, from Dashboard CSV exports, for teams without an API key.
- `history`: the MRR ledger for what those read, dated at the objects' own times.
- `reconcile` (+ `drift`): find events the webhook missed and repair objects that drifted.
- `jobs`: `run_reconcile`, the scheduled job, which queues the drift report for Slack.
- `webhook_health`: `check_webhook_health`, warnings when the feed goes silent or signatures fail.

All of them write through the same conversion and version guard as webhooks
(`handlers.stripe.objects.apply_object`). Backfill and import never post to Slack; missed
events re-fed by reconcile never alert (only the drift report is posted).
"""
