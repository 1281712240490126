"""ingest: content stored once per request; recipients point at it.

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
        -- The content store's table (postwire_common.content): what every recipient's copy
        -- of one request shares, keyed by the request id. Delivery reads it to render each
        -- copy at send time.
        CREATE TABLE ingest.contents (
            id          text PRIMARY KEY,
            account_id  text NOT NULL,
            head        bytea NOT NULL,
            body        bytea NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX contents_created ON ingest.contents (created_at);
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE ingest.contents;")
