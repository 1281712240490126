"""notifier: a received message's visibility can be changed.

``queue_receipts`` keeps what a new copy of the message needs (``body``,
``content_type``, ``enqueued_ms``, ``dequeues``: a copy in the broker cannot be taken
back, so a shortened visibility publishes another), and ``superseded``: how many older
copies of the message are still in the broker, to be dropped when they come back (they
are not in the queue's depth). The columns are NULL for rows made before.

Revision ID: 0010
"""

from postwire_common.migrations import execute_script

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE notifier.queue_receipts
            ADD COLUMN body bytea,
            ADD COLUMN content_type text,
            ADD COLUMN enqueued_ms bigint,
            ADD COLUMN dequeues integer,
            ADD COLUMN superseded integer NOT NULL DEFAULT 0;
        """
    )


def downgrade() -> None:
    execute_script(
        """
        ALTER TABLE notifier.queue_receipts
            DROP COLUMN body, DROP COLUMN content_type, DROP COLUMN enqueued_ms,
            DROP COLUMN dequeues, DROP COLUMN superseded;
        """
    )
