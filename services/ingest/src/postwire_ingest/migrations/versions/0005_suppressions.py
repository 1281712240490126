"""ingest: its copy of each account's suppression list, kept from ``SuppressionChanges``.

A removal stays as a row with ``suppressed = false``, so a late, older "added" change
cannot bring the address back: a change applies only if it is newer than the row.

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
        CREATE TABLE ingest.suppressions (
            tenant_id  text NOT NULL,
            address    text NOT NULL,  -- lower-cased
            suppressed boolean NOT NULL,
            reason     text,
            changed_at timestamptz NOT NULL,
            PRIMARY KEY (tenant_id, address)
        );
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE ingest.suppressions;")
