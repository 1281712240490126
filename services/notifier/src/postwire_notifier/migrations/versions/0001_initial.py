"""notifier: webhooks, pushes and every push attempt.

Revision ID: 0001
"""

from postwire_common.migrations import execute_script

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE notifier.webhooks (
            id          text PRIMARY KEY,
            tenant_id   text NOT NULL,
            url         text NOT NULL,
            events      text[] NOT NULL,
            app_key     text NOT NULL,   -- HMAC key: must be readable to sign pushes
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX webhooks_tenant ON notifier.webhooks (tenant_id);

        -- One push per (webhook, event); the token stays the same across its attempts so
        -- receivers can de-duplicate retries by it.
        CREATE TABLE notifier.pushes (
            id          bigserial PRIMARY KEY,
            webhook_id  text NOT NULL REFERENCES notifier.webhooks(id) ON DELETE CASCADE,
            event_id    text NOT NULL,
            token       text NOT NULL,
            body        jsonb NOT NULL,
            state       text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'delivered', 'dropped')),
            attempts    integer NOT NULL DEFAULT 0,
            created_at  timestamptz NOT NULL DEFAULT now(),
            updated_at  timestamptz NOT NULL DEFAULT now(),
            UNIQUE (webhook_id, event_id)
        );

        CREATE TABLE notifier.push_attempts (
            push_id     bigint NOT NULL REFERENCES notifier.pushes(id) ON DELETE CASCADE,
            attempt     integer NOT NULL,
            at          timestamptz NOT NULL DEFAULT now(),
            http_status integer,
            latency_ms  integer NOT NULL,
            response    text,
            error       text,
            will_retry  boolean NOT NULL,
            PRIMARY KEY (push_id, attempt)
        );
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE notifier.push_attempts, notifier.pushes, notifier.webhooks;")
