"""ingest: idempotency keys partitioned by day (kept for the retention period, then the
whole day is dropped).

Revision ID: 0003
"""

from postwire_common.migrations import daily_partitions, execute_script

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE ingest.idempotency_keys RENAME TO idempotency_keys_0002;
        ALTER INDEX ingest.idempotency_keys_pkey RENAME TO idempotency_keys_0002_pkey;
        -- A key is unique per account while it is kept: the claim looks it up in every
        -- day kept before it inserts; the key includes the day only because partitioning
        -- needs it.
        CREATE TABLE ingest.idempotency_keys (
            account_id      text NOT NULL,
            key             text NOT NULL,
            request_hash    bytea NOT NULL,
            response        jsonb NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (account_id, key, created_at)
        ) PARTITION BY RANGE (created_at);
        CREATE TABLE ingest.idempotency_keys_other PARTITION OF ingest.idempotency_keys DEFAULT;
        DAILY_PARTITIONS
        INSERT INTO ingest.idempotency_keys SELECT * FROM ingest.idempotency_keys_0002;
        DROP TABLE ingest.idempotency_keys_0002;
        """.replace("DAILY_PARTITIONS", daily_partitions("ingest.idempotency_keys", "created_at", "ingest.idempotency_keys_0002"))
    )


def downgrade() -> None:
    execute_script(
        """
        CREATE TABLE ingest.idempotency_keys_0003
            (LIKE ingest.idempotency_keys INCLUDING DEFAULTS);
        INSERT INTO ingest.idempotency_keys_0003 SELECT * FROM ingest.idempotency_keys;
        DROP TABLE ingest.idempotency_keys;
        ALTER TABLE ingest.idempotency_keys_0003 RENAME TO idempotency_keys;
        ALTER TABLE ingest.idempotency_keys ADD PRIMARY KEY (account_id, key);
        """
    )
