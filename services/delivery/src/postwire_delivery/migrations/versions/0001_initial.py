"""delivery: one row per delivery attempt, one per finished message.

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
        -- An attempt is claimed (lease_until) before any SMTP and finished after it, so a
        -- redelivered bus message neither repeats a finished attempt nor races a live one.
        CREATE TABLE delivery.attempts (
            env_id      text NOT NULL,
            attempt     integer NOT NULL,
            lease_until timestamptz NOT NULL,
            started_at  timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            outcome     text CHECK (outcome IN ('delivered', 'soft', 'hard')),
            status      integer,
            code        integer,
            message     text,
            host        text,
            PRIMARY KEY (env_id, attempt)
        );

        -- The terminal outcome of a message: the guard against delivering it twice.
        CREATE TABLE delivery.results (
            env_id      text PRIMARY KEY,
            attempt     integer NOT NULL,
            outcome     text NOT NULL CHECK (outcome IN ('delivered', 'hard')),
            status      integer,
            code        integer,
            message     text NOT NULL,
            host        text,
            finished_at timestamptz NOT NULL
        );
        """
    )


def downgrade() -> None:
    execute_script("DROP TABLE delivery.results, delivery.attempts;")
