"""The relay: proxy numbers, messages, webhooks, routing, outbox and the SMS gateway."""
