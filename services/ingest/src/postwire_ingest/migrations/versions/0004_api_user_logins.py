"""ingest: API user names are per account; Basic auth names a login, ``<account>.<name>``.

A tenant could learn that another tenant's API user name exists (409 on creating it) and
squat names such as ``<account>_trigger`` before the operator created that account. Names
are now unique within their account only; the globally unique ``login`` puts the account
in front (account names are unique and made by the operator; neither contains a dot, so a
login never collides). Existing users keep their old name as login, so their credentials
keep working (such a login has no dot, so it cannot collide with a new one either).

Revision ID: 0004
"""

from postwire_common.migrations import execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE ingest.api_users ADD COLUMN login text;
        UPDATE ingest.api_users SET login = name;
        ALTER TABLE ingest.api_users ALTER COLUMN login SET NOT NULL;
        ALTER TABLE ingest.api_users DROP CONSTRAINT api_users_pkey;
        ALTER TABLE ingest.api_users ADD PRIMARY KEY (account_id, name);
        CREATE UNIQUE INDEX api_users_login ON ingest.api_users (login);
        DROP INDEX ingest.api_users_account;  -- the primary key leads with account_id
        """
    )


def downgrade() -> None:
    execute_script(
        """
        CREATE INDEX api_users_account ON ingest.api_users (account_id);
        DROP INDEX ingest.api_users_login;
        ALTER TABLE ingest.api_users DROP CONSTRAINT api_users_pkey;
        UPDATE ingest.api_users SET name = login;
        ALTER TABLE ingest.api_users ADD PRIMARY KEY (name);
        ALTER TABLE ingest.api_users DROP COLUMN login;
        """
    )
