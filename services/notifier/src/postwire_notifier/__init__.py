"""notifier: event-notification rules, topics, queues and subscriptions; pushes events to
HTTP endpoints (signed, retried) and to account queues."""
