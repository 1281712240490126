"""ingest: failed SMTP AUTH attempts, shared by every ingest process.

The submission server slows down and locks out AUTH guessing by source address and by
user (``submission/throttle.py``). Kept here rather than in each process's memory, so a
guesser gets the same budget however many replicas and workers its sessions reach. Rows
older than the window are deleted as new failures come in.

Revision ID: 0013
"""

from postwire_common.migrations import execute_script

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE ingest.auth_failures (
            key  text        NOT NULL,  -- "ip:<address>" or "user:<api_user>"
            at   timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX auth_failures_key_at ON ingest.auth_failures (key, at);
        CREATE INDEX auth_failures_at ON ingest.auth_failures (at);
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE ingest.auth_failures;")
