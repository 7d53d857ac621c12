"""PLACEHOLDER until the Stripe handlers branch merges: the integrator replaces this file.

`registry._load_handlers()` imports this module so the handler modules' `@handles`
decorators run. The ingestion branch has no handlers of its own, so this stub imports
nothing and every event type counts as unhandled (recorded as `ignored`).
"""
