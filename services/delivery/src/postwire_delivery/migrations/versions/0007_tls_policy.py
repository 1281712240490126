"""delivery: a queued recipient keeps the TLS mode its account's policy gave it when the
mail was accepted (``require``, ``opportunistic`` or ``none``); rows queued before this
revision are opportunistic, as all delivery was.

Revision ID: 0007
"""

from postwire_common.migrations import execute_script

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE delivery.queue ADD COLUMN tls text NOT NULL DEFAULT 'opportunistic'
            CHECK (tls IN ('require', 'opportunistic', 'none'));
        """
    )


def downgrade() -> None:
    execute_script("ALTER TABLE delivery.queue DROP COLUMN tls;")
