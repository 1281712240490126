"""notifier: account queues live in RabbitMQ; PostgreSQL keeps what the broker cannot.

- ``queue_seen``: the dedup keys already published (one copy per event, topic and
  subscription), kept for the longest retention.
- ``queue_receipts``: the newest receipt handle of each message received over HTTP and
  when it becomes visible again.
- ``queue_tombstones``: messages deleted by handle whose copy is still in the broker
  (waiting out its visibility timeout); the copy is dropped when it comes back.
- ``queue_credentials``: the broker users an account made to consume a queue over AMQP.

Revision ID: 0008
"""

from postwire_common.migrations import execute_script

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE notifier.queue_seen (
            tenant_id  text NOT NULL,
            queue      text NOT NULL,
            dedup      text NOT NULL,
            seen_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, queue, dedup),
            FOREIGN KEY (tenant_id, queue) REFERENCES notifier.queues ON DELETE CASCADE
        );
        CREATE INDEX queue_seen_age ON notifier.queue_seen (seen_at);
        CREATE TABLE notifier.queue_receipts (
            tenant_id   text NOT NULL,
            queue       text NOT NULL,
            message_id  text NOT NULL,
            receipt     text NOT NULL UNIQUE,
            visible_at  timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, queue, message_id),
            FOREIGN KEY (tenant_id, queue) REFERENCES notifier.queues ON DELETE CASCADE
        );
        CREATE TABLE notifier.queue_tombstones (
            tenant_id   text NOT NULL,
            queue       text NOT NULL,
            message_id  text NOT NULL,
            deleted_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, queue, message_id),
            FOREIGN KEY (tenant_id, queue) REFERENCES notifier.queues ON DELETE CASCADE
        );
        CREATE TABLE notifier.queue_credentials (
            username    text PRIMARY KEY,
            tenant_id   text NOT NULL,
            queue       text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            FOREIGN KEY (tenant_id, queue) REFERENCES notifier.queues ON DELETE CASCADE
        );
        CREATE INDEX queue_credentials_queue ON notifier.queue_credentials (tenant_id, queue);
        """
    )


def downgrade() -> None:
    execute_script(
        """
        DROP TABLE notifier.queue_credentials;
        DROP TABLE notifier.queue_tombstones;
        DROP TABLE notifier.queue_receipts;
        DROP TABLE notifier.queue_seen;
        """
    )
