"""Outgoing webhooks: the HTTP sender behind `core.webhooks.WebhookSender`."""
