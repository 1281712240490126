"""delivery: a terminal result remembers whose message it was; reports received.

A bounce or a complaint can arrive days after the message was delivered, when its queue
row is long gone; the inbound MX (``inbound.py``) turns it into an event for that message,
which needs the account, the recipient and the message's identity. Rows written before
this revision have NULLs there: reports about them are ignored. ``reports`` keeps the
first report of each kind per message, so the same DSN received again makes no second
event.

Revision ID: 0006
"""

from postwire_common.migrations import execute_script

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE delivery.results
            ADD COLUMN tenant_id text,
            ADD COLUMN rcpt      text,
            ADD COLUMN msg_id    text,
            ADD COLUMN sender    text,
            ADD COLUMN label     text,
            ADD COLUMN recv_time timestamptz;
        CREATE TABLE delivery.reports (
            env_id      text NOT NULL,
            kind        text NOT NULL,
            format      text NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (env_id, kind)
        );
        """
    )


def downgrade() -> None:
    execute_script(
        """
        DROP TABLE delivery.reports;
        ALTER TABLE delivery.results DROP COLUMN tenant_id, DROP COLUMN rcpt,
            DROP COLUMN msg_id, DROP COLUMN sender, DROP COLUMN label, DROP COLUMN recv_time;
        """
    )
