"""Prometheus metrics of the process. One process registry: ``postwire run all`` exposes
every service's metrics on one ``/metrics``. Bus metrics are in ``bus_metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ACCEPTED = Counter(
    "postwire_messages_accepted_total", "Recipient messages accepted by ingest.", ["via"]
)
OUTBOX_PUBLISHED = Counter("postwire_outbox_published_total", "Outbox rows confirmed.")
OUTBOX_FAILURES = Counter("postwire_outbox_failures_total", "Outbox publishes not confirmed.")
DELIVERIES = Counter(
    "postwire_delivery_attempts_total", "SMTP delivery attempts by outcome.", ["outcome"]
)
DELIVERY_SECONDS = Histogram(
    "postwire_delivery_attempt_seconds",
    "Duration of one delivery attempt (route, connect, transaction).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
DELIVERY_DUPLICATES = Counter(
    "postwire_delivery_duplicates_total",
    "Recipients received again on the bus, already queued or finished (not queued again).",
)
SUBMISSION_AUTH = Counter(
    "postwire_submission_auth_total",
    "SMTP submission AUTH attempts by result (ok, failed, locked: refused for too many "
    "failures from the address, error: could not be checked).",
    ["result"],
)
SUBMISSION_SESSIONS = Counter(
    "postwire_submission_sessions_refused_total",
    "SMTP submission connections refused before the greeting, by reason.",
    ["reason"],
)
SMTP_CONNECTIONS = Gauge("postwire_smtp_connections", "Open outbound SMTP connections.")
EVENTS_RECORDED = Counter("postwire_events_recorded_total", "Events recorded.", ["event"])
PUSHES = Counter("postwire_webhook_pushes_total", "Webhook push attempts.", ["outcome"])
INBOUND_MESSAGES = Counter(
    "postwire_inbound_messages_total",
    "Mail received by the inbound MX, by what it did (bounce, complaint, auto_reply, "
    "delayed, unknown message, recipient mismatch, relay_refused, ...).",
    ["result"],
)
DOMAIN_STATE_CHANGES = Counter(
    "postwire_domain_state_changes_total",
    "Sender domains whose state a DNS check moved up or down (alert on down).",
    ["direction"],
)
HTTP_REQUESTS = Counter(
    "postwire_http_requests_total", "HTTP requests.", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "postwire_http_request_seconds",
    "HTTP request duration.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
INFRASTRUCTURE_RETRIES = Counter(
    "postwire_infrastructure_retries_total",
    "Bus messages handled again in place because PostgreSQL or RabbitMQ failed.",
)
DEAD_LETTERS = Gauge(
    "postwire_dead_letters",
    "Messages waiting in a dead-letter queue (alert when above 0 for long).",
    ["queue"],
)
REDRIVEN = Counter(
    "postwire_dead_letters_redriven_total", "Dead-lettered messages sent back to work.", ["queue"]
)
