"""delivery: DKIM signing keys, and the selectors each queued recipient is signed with.

Keys arrive with the recipient batches that need them (encrypted as ingest stores them)
and are kept per (account, domain, selector): a rotation adds a selector, and mail queued
before it keeps signing with the key it was accepted with.

Revision ID: 0005
"""

from postwire_common.migrations import execute_script

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE delivery.signing_keys (
            tenant_id   text NOT NULL,
            domain      text NOT NULL,
            selector    text NOT NULL,
            private_key text NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, domain, selector)
        );
        ALTER TABLE delivery.queue ADD COLUMN dkim_selectors text[];
        """
    )


def downgrade() -> None:
    execute_script(
        """
        ALTER TABLE delivery.queue DROP COLUMN dkim_selectors;
        DROP TABLE delivery.signing_keys;
        """
    )
