"""ingest: API keys kept encrypted too, for the vendors' HMAC signature schemes.

Aliyun (ACS3, RPC HMAC-SHA1), Aliyun MNS and Tencent (TC3) requests carry a signature
made with the secret, not the secret itself: checking one needs the key back. Keys made
or regenerated from this revision on are stored encrypted (``POSTWIRE_SECRET_KEYS``)
next to their hash; older users keep working with HTTP Basic and get a signed-request
error that says to regenerate the key.

Revision ID: 0015
"""

from postwire_common.migrations import execute_script

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script("ALTER TABLE ingest.api_users ADD COLUMN key_sealed text;")


def downgrade() -> None:
    execute_script("ALTER TABLE ingest.api_users DROP COLUMN key_sealed;")
