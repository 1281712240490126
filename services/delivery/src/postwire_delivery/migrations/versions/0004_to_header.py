"""delivery: a queued recipient keeps its To header when it has a display name.

Revision ID: 0004
"""

from postwire_common.migrations import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("ALTER TABLE delivery.queue ADD COLUMN to_header text;")


def downgrade() -> None:
    execute_script("ALTER TABLE delivery.queue DROP COLUMN to_header;")
