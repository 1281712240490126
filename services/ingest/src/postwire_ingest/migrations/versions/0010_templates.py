"""ingest: templates and their versions (KooMessage, SendCloud), and sensitive accounts.

A template's content lives in ``template_versions``: an update adds a version and moves
``templates.version`` to it, so what was made from an older version (tasks) can keep
reading it. ``account_id`` NULL is a public template, published by the operator and
always approved. ``accounts.sensitive`` (set by the operator: an enterprise in a
sensitive industry) makes the account's new and changed templates wait for approval.

Revision ID: 0010
"""

from postwire_common.migrations import execute_script

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE ingest.accounts ADD COLUMN sensitive boolean NOT NULL DEFAULT false;

        CREATE TABLE ingest.templates (
            id            text PRIMARY KEY,
            account_id    text REFERENCES ingest.accounts(id) ON DELETE CASCADE,
            name          text NOT NULL,
            type          text NOT NULL CHECK (type IN ('trigger', 'batch')),
            status        text NOT NULL CHECK (status IN ('approving', 'approved', 'rejected')),
            reject_reason text,
            version       integer NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now(),
            CHECK (account_id IS NOT NULL OR status = 'approved')
        );
        CREATE INDEX templates_by_account ON ingest.templates (account_id, created_at DESC, id DESC);
        CREATE INDEX templates_public ON ingest.templates (created_at DESC, id DESC)
            WHERE account_id IS NULL;
        CREATE INDEX templates_approving ON ingest.templates (created_at)
            WHERE status = 'approving';

        CREATE TABLE ingest.template_versions (
            template_id text NOT NULL REFERENCES ingest.templates(id) ON DELETE CASCADE,
            version     integer NOT NULL,
            subject     text NOT NULL,
            text        text,
            html        text,
            unsubscribe boolean NOT NULL,
            params      text[] NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (template_id, version)
        );
        """
    )


def downgrade() -> None:
    execute_script(
        """
        DROP TABLE ingest.template_versions;
        DROP TABLE ingest.templates;
        ALTER TABLE ingest.accounts DROP COLUMN sensitive;
        """
    )
