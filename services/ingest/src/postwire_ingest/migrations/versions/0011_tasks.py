"""ingest: batch sending tasks (KooMessage's sending tasks, Devino's Tasks).

A task sends one template version from one sender to its recipients at ``send_at``. Its
state moves ``scheduled -> sending -> completed`` (or ``failed``), or ``scheduled ->
cancelled``; every move is one conditional UPDATE, so a start and a cancel racing each
other cannot both win, and two ingest processes never start a task twice. A process that
dies while sending leaves its lease to run out; whoever takes the task again resends its
batches under the same idempotency keys, so no recipient gets a second message.

Revision ID: 0011
"""

from postwire_common.migrations import execute_script

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE ingest.tasks (
            id               text PRIMARY KEY,
            account_id       text NOT NULL REFERENCES ingest.accounts(id) ON DELETE CASCADE,
            api_user         text NOT NULL,
            user_type        text NOT NULL,
            name             text NOT NULL,
            template_id      text NOT NULL,
            template_version integer NOT NULL,
            subject          text,
            sender           text NOT NULL,
            label            text,
            send_at          timestamptz NOT NULL,
            state            text NOT NULL CHECK (state IN
                ('scheduled', 'preparing', 'sending', 'completed', 'cancelled', 'failed')),
            recipients       jsonb NOT NULL,
            total            integer NOT NULL DEFAULT 0,
            invalid          integer NOT NULL DEFAULT 0,
            queued           integer NOT NULL DEFAULT 0,
            suppressed       integer NOT NULL DEFAULT 0,
            invalid_rows     jsonb NOT NULL DEFAULT '[]',
            error            text,
            lease_owner      text,
            lease_until      timestamptz,
            created_at       timestamptz NOT NULL DEFAULT now(),
            started_at       timestamptz,
            finished_at      timestamptz
        );
        CREATE INDEX tasks_due ON ingest.tasks (send_at)
            WHERE state IN ('scheduled', 'preparing', 'sending');
        CREATE INDEX tasks_account ON ingest.tasks (account_id, created_at);
        CREATE INDEX tasks_template ON ingest.tasks (template_id)
            WHERE state IN ('scheduled', 'preparing', 'sending');
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE ingest.tasks;")
