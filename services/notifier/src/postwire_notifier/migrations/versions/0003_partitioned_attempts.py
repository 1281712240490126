"""notifier: push attempt history partitioned by day (retention drops whole days).

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
        ALTER TABLE notifier.push_attempts RENAME TO push_attempts_0002;
        ALTER INDEX notifier.push_attempts_pkey RENAME TO push_attempts_0002_pkey;
        CREATE TABLE notifier.push_attempts (
            push_id     bigint NOT NULL REFERENCES notifier.pushes(id) ON DELETE CASCADE,
            attempt     integer NOT NULL,
            at          timestamptz NOT NULL DEFAULT now(),
            http_status integer,
            latency_ms  integer NOT NULL,
            response    text,
            error       text,
            will_retry  boolean NOT NULL,
            PRIMARY KEY (push_id, attempt, at)
        ) PARTITION BY RANGE (at);
        CREATE TABLE notifier.push_attempts_other PARTITION OF notifier.push_attempts DEFAULT;
        DAILY_PARTITIONS
        INSERT INTO notifier.push_attempts SELECT * FROM notifier.push_attempts_0002;
        DROP TABLE notifier.push_attempts_0002;
        """.replace("DAILY_PARTITIONS", daily_partitions("notifier.push_attempts", "at", "notifier.push_attempts_0002"))
    )


def downgrade() -> None:
    execute_script(
        """
        CREATE TABLE notifier.push_attempts_0003 (LIKE notifier.push_attempts INCLUDING DEFAULTS);
        INSERT INTO notifier.push_attempts_0003 SELECT * FROM notifier.push_attempts;
        DROP TABLE notifier.push_attempts;
        ALTER TABLE notifier.push_attempts_0003 RENAME TO push_attempts;
        ALTER TABLE notifier.push_attempts ADD PRIMARY KEY (push_id, attempt);
        """
    )
