"""notifier: pushes wait in their table for their next attempt (lanes per webhook).

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
        ALTER TABLE notifier.pushes
            ADD COLUMN due_at      timestamptz NOT NULL DEFAULT now(),
            ADD COLUMN lease_owner text,
            ADD COLUMN lease_until timestamptz;
        CREATE INDEX pushes_due ON notifier.pushes (due_at) WHERE state = 'pending';
        """
    )


def downgrade() -> None:
    execute_script(
        """
        DROP INDEX notifier.pushes_due;
        ALTER TABLE notifier.pushes DROP COLUMN due_at, DROP COLUMN lease_owner,
            DROP COLUMN lease_until;
        """
    )
