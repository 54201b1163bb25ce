"""Integrations: API principals and access decisions, webhooks."""
