"""events: the event bus. Records every event of every message once (event log), keeps
each message's current status (forward only), answers the sending-details API, and
re-publishes recorded events to ``postwire.events`` for the notifier and account queues."""
