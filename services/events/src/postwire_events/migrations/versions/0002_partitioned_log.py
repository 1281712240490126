"""events: the event log partitioned by day (retention drops whole days).

Revision ID: 0002
"""

from postwire_common.migrations import daily_partitions, execute_script

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE events.event_log RENAME TO event_log_0001;
        ALTER INDEX events.event_log_env RENAME TO event_log_0001_env;
        ALTER INDEX events.event_log_pkey RENAME TO event_log_0001_pkey;

        -- An event's time is part of it (a repeated copy carries the same time), so
        -- (event_id, time) is as unique as event_id and can be the partitioned key.
        CREATE TABLE events.event_log (
            event_id    text NOT NULL,
            env_id      text NOT NULL,
            tenant_id   text NOT NULL,
            event       text NOT NULL,
            time        timestamptz NOT NULL,
            status      integer,
            err_code    integer,
            err_msg     text,
            url         text,
            attempt     integer NOT NULL DEFAULT 0,
            recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (event_id, time)
        ) PARTITION BY RANGE (time);
        CREATE INDEX event_log_env ON events.event_log (env_id, time);
        -- Events outside the days made ahead (a clock far off, a backlog older than
        -- yesterday on a new deployment) land here instead of failing.
        CREATE TABLE events.event_log_other PARTITION OF events.event_log DEFAULT;

        DAILY_PARTITIONS
        INSERT INTO events.event_log SELECT * FROM events.event_log_0001;
        DROP TABLE events.event_log_0001;
        """.replace("DAILY_PARTITIONS", daily_partitions("events.event_log", "time", "events.event_log_0001"))
    )


def downgrade() -> None:
    execute_script(
        """
        CREATE TABLE events.event_log_0002 (LIKE events.event_log INCLUDING DEFAULTS);
        INSERT INTO events.event_log_0002 SELECT * FROM events.event_log;
        DROP TABLE events.event_log;
        ALTER TABLE events.event_log_0002 RENAME TO event_log;
        ALTER TABLE events.event_log ADD PRIMARY KEY (event_id);
        CREATE INDEX event_log_env ON events.event_log (env_id, time);
        """
    )
