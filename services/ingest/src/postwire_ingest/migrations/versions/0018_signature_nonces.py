"""ingest: the Aliyun signature nonces used within the signature window.

A signed SingleSendMail replayed within the window would send the mail again: the nonce
is recorded here (not in one process's memory), so every ingest process and replica
refuses it. Rows older than twice the window are swept by the processes that use them.

Revision ID: 0018
"""

from postwire_common.migrations import execute_script

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE ingest.signature_nonces (
            access_key_id text NOT NULL,
            nonce         text NOT NULL,
            used_at       timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (access_key_id, nonce)
        );
        CREATE INDEX signature_nonces_used_at ON ingest.signature_nonces (used_at);
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE ingest.signature_nonces;")
