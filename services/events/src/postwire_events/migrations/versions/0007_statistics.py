"""events: statistics counters, and what event lists and unique counts need.

``messages`` gains ``api_user`` (from the request event), ``requested`` (0: no request
event recorded yet, so its events are not counted; 1: the request created the row; 2:
the request came after other events, which were counted with it) and the event ids of
the first human open and click (``first_open``, ``first_click``: a message counts once
in unique opens and clicks). Rows before this revision count as requested (the default
is stored once, no row is rewritten); their past events are counted by
``postwire stats-recount``. ``event_log`` gains the client of tracking events (``ip``,
``user_agent``, ``machine``) and an index for listing an account's events by type and
time. ``stats_hourly`` and ``stats_daily`` hold the counters (see ``stats.py``), each key
split in up to 16 ``shard`` rows (the recording connection's, see ``stats_store.py``) so
that concurrent transactions do not queue on an account's current hour; readers sum them.

Revision ID: 0007
"""

from postwire_common.migrations import execute_script

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COUNTERS = """
    requests      integer NOT NULL DEFAULT 0,
    delivered     integer NOT NULL DEFAULT 0,
    soft_bounces  integer NOT NULL DEFAULT 0,
    invalid       integer NOT NULL DEFAULT 0,
    spam          integer NOT NULL DEFAULT 0,
    failed        integer NOT NULL DEFAULT 0,
    opens         integer NOT NULL DEFAULT 0,
    unique_opens  integer NOT NULL DEFAULT 0,
    clicks        integer NOT NULL DEFAULT 0,
    unique_clicks integer NOT NULL DEFAULT 0,
    machine_opens integer NOT NULL DEFAULT 0,
    machine_clicks integer NOT NULL DEFAULT 0,
    spam_reports  integer NOT NULL DEFAULT 0,
    unsubscribes  integer NOT NULL DEFAULT 0,
"""


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE events.messages
            ADD COLUMN api_user    text,
            ADD COLUMN requested   smallint NOT NULL DEFAULT 1,
            ADD COLUMN first_open  text,
            ADD COLUMN first_click text;
        CREATE INDEX messages_api_user ON events.messages (tenant_id, api_user, recv_time)
            WHERE api_user IS NOT NULL;

        ALTER TABLE events.event_log
            ADD COLUMN ip         text,
            ADD COLUMN user_agent text,
            ADD COLUMN machine    text;
        CREATE INDEX event_log_tenant_event ON events.event_log (tenant_id, event, time, event_id);
        """
        + "".join(
            f"""
        CREATE TABLE events.{table} (
            tenant_id   text NOT NULL,
            period      timestamptz NOT NULL,  -- start of the UTC {unit} of recv_time
            domain      text NOT NULL,
            label       text NOT NULL,
            api_user    text NOT NULL,
            template_id text NOT NULL,
            task_id     text NOT NULL,
            shard       smallint NOT NULL DEFAULT 0,
            {COUNTERS}
            PRIMARY KEY (tenant_id, period, domain, label, api_user, template_id, task_id, shard)
        );
        """
            for table, unit in (("stats_hourly", "hour"), ("stats_daily", "day"))
        )
    )


def downgrade() -> None:
    execute_script(
        """
        DROP TABLE events.stats_daily, events.stats_hourly;
        DROP INDEX events.event_log_tenant_event;
        ALTER TABLE events.event_log DROP COLUMN ip, DROP COLUMN user_agent,
            DROP COLUMN machine;
        DROP INDEX events.messages_api_user;
        ALTER TABLE events.messages DROP COLUMN api_user, DROP COLUMN requested,
            DROP COLUMN first_open, DROP COLUMN first_click;
        """
    )
