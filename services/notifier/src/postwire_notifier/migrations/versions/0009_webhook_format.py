"""notifier: a webhook's push format.

``webhooks.push_format``: ``postwire`` (the signed JSON of API.md) or ``sendcloud``
(SendCloud's event and field names, form-encoded, for receivers written for SendCloud).

Revision ID: 0009
"""

from postwire_common.migrations import execute_script

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE notifier.webhooks
            ADD COLUMN push_format text NOT NULL DEFAULT 'postwire'
            CHECK (push_format IN ('postwire', 'sendcloud'));
        """
    )


def downgrade() -> None:
    execute_script("ALTER TABLE notifier.webhooks DROP COLUMN push_format;")
