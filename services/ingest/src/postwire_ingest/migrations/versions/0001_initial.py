"""ingest: accounts, API users, domains, senders, accepted messages, idempotency, outbox.

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
        CREATE TABLE ingest.accounts (
            id          text PRIMARY KEY,
            name        text NOT NULL UNIQUE,
            created_at  timestamptz NOT NULL DEFAULT now()
        );

        -- Basic auth names the API user alone, so its name is unique platform-wide.
        CREATE TABLE ingest.api_users (
            name        text PRIMARY KEY,
            account_id  text NOT NULL REFERENCES ingest.accounts(id) ON DELETE CASCADE,
            type        text NOT NULL CHECK (type IN ('trigger', 'batch')),
            key_hash    bytea NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX api_users_account ON ingest.api_users (account_id);

        CREATE TABLE ingest.domains (
            account_id      text NOT NULL REFERENCES ingest.accounts(id) ON DELETE CASCADE,
            name            text NOT NULL,
            status          text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'verified', 'failed')),
            dkim_selector   text NOT NULL,
            dkim_private_key text NOT NULL,
            dkim_public_key text NOT NULL,
            record_status   jsonb NOT NULL DEFAULT '{}'::jsonb,
            verified_at     timestamptz,
            created_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (account_id, name)
        );
        CREATE INDEX domains_name ON ingest.domains (name);

        CREATE TABLE ingest.senders (
            account_id  text NOT NULL,
            address     text NOT NULL,
            domain      text NOT NULL,
            alias       text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (account_id, address),
            FOREIGN KEY (account_id, domain)
                REFERENCES ingest.domains(account_id, name) ON DELETE CASCADE
        );

        CREATE TABLE ingest.messages (
            env_id      text PRIMARY KEY,
            account_id  text NOT NULL,
            request_id  text NOT NULL,
            api_user    text NOT NULL,
            msg_id      text NOT NULL,
            sender      text NOT NULL,
            rcpt        text NOT NULL,
            subject     text,
            label       text,
            status      text NOT NULL CHECK (status IN ('queued', 'suppressed')),
            size        integer NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX messages_account_created ON ingest.messages (account_id, created_at);

        CREATE TABLE ingest.idempotency_keys (
            account_id      text NOT NULL,
            key             text NOT NULL,
            request_hash    bytea NOT NULL,
            response        jsonb NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (account_id, key)
        );

        CREATE TABLE ingest.outbox (
            id          bigserial PRIMARY KEY,
            exchange    text NOT NULL,
            routing_key text NOT NULL,
            message_id  text,
            body        bytea NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    execute_script(
        """
        DROP TABLE ingest.outbox, ingest.idempotency_keys, ingest.messages, ingest.senders,
                   ingest.domains, ingest.api_users, ingest.accounts;
        """
    )
