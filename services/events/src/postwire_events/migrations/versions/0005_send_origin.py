"""events: sending details show how a message came in, and filter by template and task.

``method`` (api, smtp, task), ``template_id`` and ``task_id`` come with the request
event. Partial indexes: most mail has no task, and a search by template or task is one
account's.

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
        ALTER TABLE events.messages
            ADD COLUMN method      text,
            ADD COLUMN template_id text,
            ADD COLUMN task_id     text;
        CREATE INDEX messages_template ON events.messages (tenant_id, template_id, recv_time)
            WHERE template_id IS NOT NULL;
        CREATE INDEX messages_task ON events.messages (tenant_id, task_id, recv_time)
            WHERE task_id IS NOT NULL;
        """
    )


def downgrade() -> None:
    execute_script(
        """
        DROP INDEX events.messages_task;
        DROP INDEX events.messages_template;
        ALTER TABLE events.messages DROP COLUMN method, DROP COLUMN template_id,
            DROP COLUMN task_id;
        """
    )
