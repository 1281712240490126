"""delivery: sender domains an account deleted, until their DKIM keys are gone.

A key still named by queued mail stays until that mail has left (it was accepted signed
with it); the sweep drops it then. Keys created after the removal (the domain added
again) are not touched.

Revision ID: 0008
"""

from postwire_common.migrations import execute_script

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE delivery.removed_domains (
            tenant_id  text NOT NULL,
            domain     text NOT NULL,
            removed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, domain)
        );
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE delivery.removed_domains;")
