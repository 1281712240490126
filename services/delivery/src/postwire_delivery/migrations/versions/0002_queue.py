"""delivery: its own durable queue of recipients, attempt history, outbox.

Revision ID: 0002
"""

from postwire_common.migrations import execute_script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        -- Recipients waiting for their next attempt (first or retry). A row is leased by
        -- the process working on it (short lease, renewed while held) and deleted in the
        -- statement that records its terminal result, so it is never sent after that.
        CREATE TABLE delivery.queue (
            env_id      text PRIMARY KEY,
            request_id  text NOT NULL,
            content_id  text NOT NULL,
            tenant_id   text NOT NULL,
            sender      text NOT NULL,
            rcpt        text NOT NULL,
            msg_id      text NOT NULL,
            label       text,
            recv_time   timestamptz NOT NULL,
            lane        text NOT NULL,
            attempt     integer NOT NULL DEFAULT 1,
            due_at      timestamptz NOT NULL DEFAULT now(),
            lease_owner text,
            lease_until timestamptz
        );
        CREATE INDEX queue_due ON delivery.queue (due_at);

        -- Every finished attempt (history; the terminal one is also in results).
        DROP TABLE delivery.attempts;
        CREATE TABLE delivery.attempts (
            env_id      text NOT NULL,
            attempt     integer NOT NULL,
            finished_at timestamptz NOT NULL DEFAULT now(),
            outcome     text NOT NULL CHECK (outcome IN ('delivered', 'soft', 'hard')),
            status      integer,
            code        integer,
            message     text,
            host        text,
            PRIMARY KEY (env_id, attempt)
        );

        CREATE TABLE delivery.outbox (
            id          bigserial PRIMARY KEY,
            exchange    text NOT NULL,
            routing_key text NOT NULL,
            message_id  text,
            body        bytea NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE delivery.outbox, delivery.queue;")
