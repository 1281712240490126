"""notifier: the messages of account queues (MNS semantics: visibility, receipts).

Revision ID: 0006
"""

from postwire_common.migrations import execute_script

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE notifier.queue_messages (
            id            bigserial PRIMARY KEY,
            tenant_id     text NOT NULL,
            queue         text NOT NULL,
            message_id    text NOT NULL,
            dedup         text NOT NULL,   -- event, topic and subscription: one copy each
            body          bytea NOT NULL,
            content_type  text NOT NULL,
            enqueued_at   timestamptz NOT NULL DEFAULT now(),
            visible_at    timestamptz NOT NULL DEFAULT now(),
            receipt       text,
            dequeue_count integer NOT NULL DEFAULT 0,
            UNIQUE (tenant_id, queue, dedup),
            FOREIGN KEY (tenant_id, queue) REFERENCES notifier.queues ON DELETE CASCADE
        );
        CREATE INDEX queue_messages_next ON notifier.queue_messages
            (tenant_id, queue, visible_at, enqueued_at);
        CREATE UNIQUE INDEX queue_messages_receipt ON notifier.queue_messages (receipt)
            WHERE receipt IS NOT NULL;
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE notifier.queue_messages;")
