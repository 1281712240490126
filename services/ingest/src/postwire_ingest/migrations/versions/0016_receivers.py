"""ingest: recipient lists (Aliyun DirectMail's receivers), for BatchSendMail.

A list has a name unique in its account and members: an address (once per list, without
case) and the variables its copy of a template is rendered with.

Revision ID: 0016
"""

from postwire_common.migrations import execute_script

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE ingest.receivers (
            id          text PRIMARY KEY,
            account_id  text NOT NULL REFERENCES ingest.accounts(id) ON DELETE CASCADE,
            name        text NOT NULL,
            alias       text NOT NULL,
            description text NOT NULL DEFAULT '',
            created_at  timestamptz NOT NULL DEFAULT now(),
            UNIQUE (account_id, name)
        );
        CREATE TABLE ingest.receiver_members (
            receiver_id text NOT NULL REFERENCES ingest.receivers(id) ON DELETE CASCADE,
            address_key text NOT NULL,  -- lower(address): one member per address
            address     text NOT NULL,
            variables   jsonb NOT NULL DEFAULT '{}',
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (receiver_id, address_key)
        );
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE ingest.receiver_members; DROP TABLE ingest.receivers;")
