"""ingest: each account's TLS policy per recipient domain (SendCloud's TLS settings).

``domain`` is a recipient domain (lower case, IDNA) or ``*``, the rule for every domain
without its own. An account without rules delivers with opportunistic TLS.

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
        CREATE TABLE ingest.tls_policies (
            account_id text NOT NULL REFERENCES ingest.accounts(id) ON DELETE CASCADE,
            domain     text NOT NULL,
            mode       text NOT NULL CHECK (mode IN ('require', 'opportunistic', 'none')),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (account_id, domain)
        );
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE ingest.tls_policies;")
