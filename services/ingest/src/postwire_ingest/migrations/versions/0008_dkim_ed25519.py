"""ingest: an Ed25519 DKIM key per domain, where the account turns it on (RFC 8463).

``dkim_ed25519`` says whether the domain signs with it too; the key (``dkim_ed25519_*``,
the private key encrypted like ``dkim_private_key``) is kept when it is turned off, so a
selector never names two keys and turning it on again brings the same record back. Its
record's check is ``record_status['dkim_ed25519']``: the key signs only while that is ok.

Revision ID: 0008
"""

from postwire_common.migrations import execute_script

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE ingest.domains
            ADD COLUMN dkim_ed25519 boolean NOT NULL DEFAULT false,
            ADD COLUMN dkim_ed25519_selector text,
            ADD COLUMN dkim_ed25519_private_key text,
            ADD COLUMN dkim_ed25519_public_key text,
            ADD CONSTRAINT domains_dkim_ed25519_key
                CHECK (NOT dkim_ed25519 OR dkim_ed25519_selector IS NOT NULL);
        """
    )


def downgrade() -> None:
    execute_script(
        """
        UPDATE ingest.domains SET record_status = record_status - 'dkim_ed25519',
            record_found = record_found - 'dkim_ed25519';
        ALTER TABLE ingest.domains DROP CONSTRAINT domains_dkim_ed25519_key,
            DROP COLUMN dkim_ed25519, DROP COLUMN dkim_ed25519_selector,
            DROP COLUMN dkim_ed25519_private_key, DROP COLUMN dkim_ed25519_public_key;
        """
    )
