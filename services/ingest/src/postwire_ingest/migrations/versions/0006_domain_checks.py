"""ingest: domain states from real DNS checks, the values found, and DKIM rotation.

States are ``unverified``, ``usable`` (SPF and DKIM pass: may send) and ``verified`` (MX
too). ``record_found`` keeps, per record, what DNS held at the last check and why it did
not pass; ``overridden`` marks a domain the operator verified by hand (the background
re-check leaves it alone). A rotation's new key waits in ``dkim_next_*`` until its record
verifies, then becomes the signing key.

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
        DO $$ DECLARE c text; BEGIN
            FOR c IN SELECT conname FROM pg_constraint
                WHERE conrelid = 'ingest.domains'::regclass AND contype = 'c'
            LOOP EXECUTE format('ALTER TABLE ingest.domains DROP CONSTRAINT %I', c)
            ; END LOOP; END $$;
        ALTER TABLE ingest.domains
            ADD COLUMN record_found jsonb NOT NULL DEFAULT '{}'::jsonb,
            ADD COLUMN checked_at timestamptz,
            ADD COLUMN overridden boolean NOT NULL DEFAULT false,
            ADD COLUMN dkim_next_selector text,
            ADD COLUMN dkim_next_private_key text,
            ADD COLUMN dkim_next_public_key text;
        UPDATE ingest.domains SET overridden = true WHERE status = 'verified';
        UPDATE ingest.domains SET status = 'unverified' WHERE status IN ('pending', 'failed');
        ALTER TABLE ingest.domains ALTER COLUMN status SET DEFAULT 'unverified',
            ADD CONSTRAINT domains_status CHECK (status IN ('unverified', 'usable', 'verified'));
        """
    )


def downgrade() -> None:
    execute_script(
        """
        ALTER TABLE ingest.domains DROP CONSTRAINT domains_status;
        UPDATE ingest.domains SET status = 'verified' WHERE status = 'usable';
        UPDATE ingest.domains SET status = 'pending' WHERE status = 'unverified';
        ALTER TABLE ingest.domains ALTER COLUMN status SET DEFAULT 'pending',
            ADD CONSTRAINT domains_status_check
                CHECK (status IN ('pending', 'verified', 'failed')),
            DROP COLUMN record_found, DROP COLUMN checked_at, DROP COLUMN overridden,
            DROP COLUMN dkim_next_selector, DROP COLUMN dkim_next_private_key,
            DROP COLUMN dkim_next_public_key;
        """
    )
