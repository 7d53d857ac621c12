"""Revenue metrics: the MRR ledger reaction (`ledger`), the monthly report (`report`), the
App Home headline (`headline`), exchange rates (`fx`), and how they are shown: a text table
(`text`), Block Kit (`blocks`), the chart (`chart`) and its upload to Slack (`upload`).
Definitions and formulas: docs/metrics.md."""
