"""ingest: the HTTP API (accounts, API users, domains, senders, messages) and SMTP
submission. It validates and accepts mail, commits one row and one outbox entry per
recipient, and publishes them to delivery and to the event bus."""
