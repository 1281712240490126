"""events: recipients are searched case-insensitively (local parts keep their case).

Revision ID: 0003
"""

from postwire_common.migrations import execute_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE INDEX messages_tenant_rcpt_ci ON events.messages (tenant_id, lower(rcpt));
        DROP INDEX events.messages_tenant_rcpt;
        """
    )


def downgrade() -> None:
    execute_script(
        """
        CREATE INDEX messages_tenant_rcpt ON events.messages (tenant_id, rcpt);
        DROP INDEX events.messages_tenant_rcpt_ci;
        """
    )
