"""events: event log and per-message status view.

Revision ID: 0001
"""

from postwire_common.migrations import execute_script

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE events.event_log (
            event_id    text PRIMARY KEY,
            env_id      text NOT NULL,
            tenant_id   text NOT NULL,
            event       text NOT NULL,
            time        timestamptz NOT NULL,
            status      integer,
            err_code    integer,
            err_msg     text,
            url         text,
            attempt     integer NOT NULL DEFAULT 0,
            recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE INDEX event_log_env ON events.event_log (env_id, time);

        -- One row per recipient message, created by whichever of its events comes first
        -- (request and delivery results travel different queues) and moved forward only:
        -- rank 1 (queued, soft_bounced) by time, rank 2 (delivered, failed, suppressed)
        -- is terminal.
        CREATE TABLE events.messages (
            env_id      text PRIMARY KEY,
            tenant_id   text NOT NULL,
            msg_id      text NOT NULL,
            sender      text NOT NULL,
            rcpt        text NOT NULL,
            subject     text,
            label       text,
            status      text NOT NULL,
            status_rank integer NOT NULL,
            status_time timestamptz NOT NULL,
            status_code integer,
            err_code    integer,
            err_msg     text,
            recv_time   timestamptz NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX messages_tenant_recv ON events.messages (tenant_id, recv_time DESC, env_id DESC);
        CREATE INDEX messages_tenant_rcpt ON events.messages (tenant_id, rcpt);
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE events.messages, events.event_log;")
