"""events: each account's suppression list, and an outbox for telling ingest about it.

Revision ID: 0004
"""

from postwire_common.migrations import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE events.suppressions (
            tenant_id     text NOT NULL,
            address       text NOT NULL,  -- lower-cased
            reason        text NOT NULL
                          CHECK (reason IN ('hard_bounce', 'complaint', 'unsubscribe', 'manual')),
            source_env_id text,
            created_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, address)
        );
        CREATE INDEX suppressions_listing ON events.suppressions (tenant_id, created_at, address);
        CREATE TABLE events.outbox (
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
    execute_script("DROP TABLE events.outbox; DROP TABLE events.suppressions;")
