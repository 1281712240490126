"""delivery: attempt history partitioned by day (retention drops whole days).

Revision ID: 0003
"""

from postwire_common.migrations import execute_script

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
        -- One statement (no line of it ends in a semicolon: execute_script splits there).
        DO $$ DECLARE day date; BEGIN
            FOR day IN SELECT generate_series(current_date - 1, current_date + 3, '1 day')::date
                UNION SELECT DISTINCT (finished_at AT TIME ZONE 'UTC')::date FROM delivery.attempts_0002
            LOOP EXECUTE format(
                'CREATE TABLE IF NOT EXISTS delivery.attempts_p%s PARTITION OF delivery.attempts '
                'FOR VALUES FROM (%L) TO (%L)',
                to_char(day, 'YYYYMMDD'), day::timestamp AT TIME ZONE 'UTC',
                (day + 1)::timestamp AT TIME ZONE 'UTC')
            ; END LOOP; END $$;
        INSERT INTO delivery.attempts SELECT * FROM delivery.attempts_0002;
        DROP TABLE delivery.attempts_0002;
        """
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
