"""notifier: topics, queues, subscriptions and event rules (MNS's model).

Revision ID: 0005
"""

from postwire_common.migrations import execute_script

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        CREATE TABLE notifier.topics (
            tenant_id   text NOT NULL,
            name        text NOT NULL,
            rule        text,            -- the event rule that made it, if one did
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, name)
        );
        CREATE TABLE notifier.queues (
            tenant_id           text NOT NULL,
            name                text NOT NULL,
            visibility_timeout  integer NOT NULL,
            message_retention   integer NOT NULL,
            max_message_size    integer NOT NULL,
            dropped             bigint NOT NULL DEFAULT 0,  -- past retention, never received
            created_at          timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, name)
        );
        CREATE TABLE notifier.subscriptions (
            tenant_id       text NOT NULL,
            topic           text NOT NULL,
            name            text NOT NULL,
            endpoint        text NOT NULL,
            notify_strategy text NOT NULL,
            content_format  text NOT NULL,
            rule            text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, topic, name),
            FOREIGN KEY (tenant_id, topic) REFERENCES notifier.topics ON DELETE CASCADE
        );
        CREATE TABLE notifier.event_rules (
            tenant_id     text NOT NULL,
            name          text NOT NULL,
            event_types   text[] NOT NULL,
            endpoints     text[] NOT NULL,
            topic         text NOT NULL,   -- where its events are published
            undeliverable bigint NOT NULL DEFAULT 0,  -- events whose topic was gone
            created_at    timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant_id, name)
        );
        """
    )


def downgrade() -> None:
    execute_script(
        "DROP TABLE notifier.event_rules, notifier.subscriptions, notifier.queues, "
        "notifier.topics;"
    )
