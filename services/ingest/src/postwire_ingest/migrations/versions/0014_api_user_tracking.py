"""ingest: an API user's default tracking (SendCloud's per-API_USER tracking options).

A message that names no ``tracking`` gets its API user's: ``{"opens", "clicks",
"unsubscribe"}`` as JSON, or NULL for none.

Revision ID: 0014
"""

from postwire_common.migrations import execute_script

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("ALTER TABLE ingest.api_users ADD COLUMN tracking jsonb;")


def downgrade() -> None:
    execute_script("ALTER TABLE ingest.api_users DROP COLUMN tracking;")
