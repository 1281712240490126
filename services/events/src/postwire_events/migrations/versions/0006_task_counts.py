"""events: delivered and failed counts per sending task, announced to ingest.

``messages.counted`` is what a message adds to its task's counts (``delivered``,
``failed`` or nothing): it is set in the transaction that moves the message's status,
while the row is locked, so a redelivered or concurrent event never counts twice and a
bounce after delivery moves the message from one count to the other. ``task_counts``
holds the sums; ``pending`` marks those changed since they were last written to the
outbox (a flush at most every second, so a burst of results is one message per task).
The column is nullable without a default and its check ``NOT VALID``: adding them reads
and rewrites no row. Messages of tasks sent before this revision are counted here.

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
        ALTER TABLE events.messages
            ADD COLUMN counted text,
            ADD CONSTRAINT messages_counted CHECK (counted IN ('delivered', 'failed')) NOT VALID;
        CREATE TABLE events.task_counts (
            tenant_id  text NOT NULL,
            task_id    text NOT NULL,
            -- No CHECK (>= 0): an upsert checks the row it proposes, and a move
            -- proposes delivered -1.
            delivered  integer NOT NULL DEFAULT 0,
            failed     integer NOT NULL DEFAULT 0,
            pending    boolean NOT NULL DEFAULT true,
            updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (tenant_id, task_id)
        );
        CREATE INDEX task_counts_pending ON events.task_counts (updated_at) WHERE pending;

        UPDATE events.messages SET counted = CASE status WHEN 'delivered' THEN 'delivered'
            ELSE 'failed' END
        WHERE task_id IS NOT NULL AND status IN ('delivered', 'failed', 'invalid');
        INSERT INTO events.task_counts (tenant_id, task_id, delivered, failed)
        SELECT tenant_id, task_id, count(*) FILTER (WHERE counted = 'delivered'),
            count(*) FILTER (WHERE counted = 'failed')
        FROM events.messages WHERE task_id IS NOT NULL AND counted IS NOT NULL
        GROUP BY tenant_id, task_id;
        """
    )


def downgrade() -> None:
    execute_script(
        "DROP TABLE events.task_counts; ALTER TABLE events.messages DROP COLUMN counted;"
    )
