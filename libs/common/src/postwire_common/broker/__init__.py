"""RabbitMQ plumbing: topology, broker factory, confirmed publishing, outbox, consume policy."""
