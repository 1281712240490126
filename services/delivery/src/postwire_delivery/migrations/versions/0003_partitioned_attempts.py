"""delivery: attempt history partitioned by day (retention drops whole days).

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
        ALTER TABLE delivery.attempts RENAME TO attempts_0002;
        ALTER INDEX delivery.attempts_pkey RENAME TO attempts_0002_pkey;
        CREATE TABLE delivery.attempts (
            env_id      text NOT NULL,
            attempt     integer NOT NULL,
            finished_at timestamptz NOT NULL DEFAULT now(),
            outcome     text NOT NULL CHECK (outcome IN ('delivered', 'soft', 'hard')),
            status      integer,
            code        integer,
            message     text,
            host        text,
            PRIMARY KEY (env_id, attempt, finished_at)
        ) PARTITION BY RANGE (finished_at);
        CREATE TABLE delivery.attempts_other PARTITION OF delivery.attempts DEFAULT;
        DAILY_PARTITIONS
        INSERT INTO delivery.attempts SELECT * FROM delivery.attempts_0002;
        DROP TABLE delivery.attempts_0002;
        """.replace("DAILY_PARTITIONS", daily_partitions("delivery.attempts", "finished_at", "delivery.attempts_0002"))
    )


def downgrade() -> None:
    execute_script(
        """
        CREATE TABLE delivery.attempts_0003 (LIKE delivery.attempts INCLUDING DEFAULTS);
        INSERT INTO delivery.attempts_0003 SELECT * FROM delivery.attempts;
        DROP TABLE delivery.attempts;
        ALTER TABLE delivery.attempts_0003 RENAME TO attempts;
        ALTER TABLE delivery.attempts ADD PRIMARY KEY (env_id, attempt);
        """
    )
