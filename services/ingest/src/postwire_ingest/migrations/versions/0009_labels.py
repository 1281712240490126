"""ingest: labels (SendCloud), and the tracking a request asked for.

A label has an id and a name per account; sending with a ``label`` that does not exist
creates it. ``contents.tracking`` keeps a request's ``tracking`` choice (opens, clicks,
unsubscribe) with what its copies share, for the tracking issue to act on.

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
        CREATE TABLE ingest.labels (
            account_id text NOT NULL REFERENCES ingest.accounts(id) ON DELETE CASCADE,
            id         text NOT NULL,
            name       text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (account_id, id),
            UNIQUE (account_id, name)
        );
        ALTER TABLE ingest.contents ADD COLUMN tracking jsonb;
        """
    )


def downgrade() -> None:
    execute_script(
        """
        ALTER TABLE ingest.contents DROP COLUMN tracking;
        DROP TABLE ingest.labels;
        """
    )
