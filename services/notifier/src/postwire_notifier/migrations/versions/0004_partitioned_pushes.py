"""notifier: pushes partitioned by their event's day (retention drops whole days).

A push is unique per (webhook, event). A partitioned table's unique keys must hold the
partition key, so pushes are partitioned by ``event_at``, the event's own time: the same
event always carries the same time, and ``(webhook_id, event_id, event_at)`` stays as
unique as ``(webhook_id, event_id)`` was. Attempts keep no foreign key to their push:
both are history, dropped by day on the same retention period.

Revision ID: 0004
"""

from postwire_common.migrations import daily_partitions, execute_script

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        DO $$ DECLARE c text; BEGIN
            FOR c IN SELECT conname FROM pg_constraint
                WHERE conrelid = 'notifier.push_attempts'::regclass AND contype = 'f'
            LOOP EXECUTE format('ALTER TABLE notifier.push_attempts DROP CONSTRAINT %I', c)
            ; END LOOP; END $$;
        ALTER TABLE notifier.pushes RENAME TO pushes_0003;
        ALTER INDEX notifier.pushes_pkey RENAME TO pushes_0003_pkey;
        ALTER INDEX notifier.pushes_webhook_id_event_id_key RENAME TO pushes_0003_key;
        ALTER INDEX notifier.pushes_due RENAME TO pushes_0003_due;
        CREATE TABLE notifier.pushes (
            id          bigint NOT NULL DEFAULT nextval('notifier.pushes_id_seq'),
            webhook_id  text NOT NULL REFERENCES notifier.webhooks(id) ON DELETE CASCADE,
            event_id    text NOT NULL,
            event_at    timestamptz NOT NULL,
            token       text NOT NULL,
            body        jsonb NOT NULL,
            state       text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'delivered', 'dropped')),
            attempts    integer NOT NULL DEFAULT 0,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now(),
            due_at      timestamptz NOT NULL DEFAULT now(),
            lease_owner text,
            lease_until timestamptz,
            PRIMARY KEY (id, event_at),
            UNIQUE (webhook_id, event_id, event_at)
        ) PARTITION BY RANGE (event_at);
        ALTER SEQUENCE notifier.pushes_id_seq OWNED BY notifier.pushes.id;
        CREATE INDEX pushes_due ON notifier.pushes (due_at) WHERE state = 'pending';
        CREATE INDEX pushes_id ON notifier.pushes (id);
        CREATE TABLE notifier.pushes_other PARTITION OF notifier.pushes DEFAULT;
        DAILY_PARTITIONS
        INSERT INTO notifier.pushes (id, webhook_id, event_id, event_at, token, body, state,
            attempts, created_at, updated_at, due_at, lease_owner, lease_until)
        SELECT id, webhook_id, event_id, (body->>'time')::timestamptz, token, body, state,
            attempts, created_at, updated_at, due_at, lease_owner, lease_until
        FROM notifier.pushes_0003;
        DROP TABLE notifier.pushes_0003;
        """.replace(
            "DAILY_PARTITIONS",
            daily_partitions(
                "notifier.pushes",
                "(body->>'time')::timestamptz",
                "notifier.pushes_0003",
            ),
        )
    )


def downgrade() -> None:
    execute_script(
        """
        CREATE TABLE notifier.pushes_0004 (LIKE notifier.pushes INCLUDING DEFAULTS);
        INSERT INTO notifier.pushes_0004 SELECT * FROM notifier.pushes;
        ALTER SEQUENCE notifier.pushes_id_seq OWNED BY notifier.pushes_0004.id;
        DROP TABLE notifier.pushes;
        ALTER TABLE notifier.pushes_0004 RENAME TO pushes;
        ALTER TABLE notifier.pushes DROP COLUMN event_at;
        ALTER TABLE notifier.pushes ADD PRIMARY KEY (id);
        ALTER TABLE notifier.pushes ADD UNIQUE (webhook_id, event_id);
        ALTER TABLE notifier.pushes ADD FOREIGN KEY (webhook_id)
            REFERENCES notifier.webhooks(id) ON DELETE CASCADE;
        CREATE INDEX pushes_due ON notifier.pushes (due_at) WHERE state = 'pending';
        DELETE FROM notifier.push_attempts a
            WHERE NOT EXISTS (SELECT 1 FROM notifier.pushes p WHERE p.id = a.push_id);
        ALTER TABLE notifier.push_attempts ADD FOREIGN KEY (push_id)
            REFERENCES notifier.pushes(id) ON DELETE CASCADE;
        """
    )
