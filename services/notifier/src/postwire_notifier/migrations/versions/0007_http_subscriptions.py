"""notifier: an HTTP subscription is pushed by the webhook engine.

Each HTTP subscription owns a row in ``notifier.webhooks`` that names it (``sub_topic``,
``sub_name``) and says how its pushes look (``content_format``) and are retried
(``notify_strategy``); plain webhooks leave those NULL. So pushes, lanes, leases, retries
and attempt history are one engine for both. The row goes with its subscription (and
its pending pushes with the row).

Revision ID: 0007
"""

from postwire_common.migrations import execute_script

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE notifier.webhooks
            ADD COLUMN content_format  text,
            ADD COLUMN notify_strategy text,
            ADD COLUMN sub_topic       text,
            ADD COLUMN sub_name        text,
            ADD FOREIGN KEY (tenant_id, sub_topic, sub_name)
                REFERENCES notifier.subscriptions (tenant_id, topic, name) ON DELETE CASCADE;
        CREATE UNIQUE INDEX webhooks_subscription ON notifier.webhooks
            (tenant_id, sub_topic, sub_name) WHERE sub_name IS NOT NULL;
        """
    )


def downgrade() -> None:
    execute_script(
        """
        DELETE FROM notifier.webhooks WHERE sub_name IS NOT NULL;
        DROP INDEX notifier.webhooks_subscription;
        ALTER TABLE notifier.webhooks DROP COLUMN content_format,
            DROP COLUMN notify_strategy, DROP COLUMN sub_topic, DROP COLUMN sub_name;
        """
    )
