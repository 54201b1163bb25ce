"""Outgoing webhooks: the HTTP sender behind `core.integration.webhook_service.WebhookSender`."""
