"""ingest: a task's recipients as rows, its uploaded file, attachments and counts.

A task made from a CSV or XLSX upload keeps the file in ``task_files`` (1 MB chunks, so
any ingest process can expand it, and a process dying mid-upload leaves nothing half
made) until a runner expands it into ``task_rows`` and ``task_invalid_rows``; typed-in
recipients go straight to the same tables. A duplicate address is found by the unique
index, not by a set in memory: memory stays flat whatever the row count. A runner sends
the rows in order and records ``sent_through`` (the last row sent) with each batch, so a
runner taking over resumes there. ``delivered`` and ``failed`` are what the events
service last reported (``TaskCounts``), with the time it counted them: an older report
never overwrites a newer one.

The jsonb ``recipients`` and ``invalid_rows`` of 0011 move into the new tables.

Revision ID: 0012
"""

from postwire_common.migrations import execute_script

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        """
        ALTER TABLE ingest.tasks
            ADD COLUMN file_name    text,
            ADD COLUMN file_format  text CHECK (file_format IN ('csv', 'xlsx')),
            ADD COLUMN file_size    bigint,
            ADD COLUMN sent_through integer NOT NULL DEFAULT 0,
            ADD COLUMN delivered    integer NOT NULL DEFAULT 0,
            ADD COLUMN failed       integer NOT NULL DEFAULT 0,
            ADD COLUMN counts_at    timestamptz;

        CREATE TABLE ingest.task_files (
            task_id text NOT NULL REFERENCES ingest.tasks(id) ON DELETE CASCADE,
            seq     integer NOT NULL,
            data    bytea NOT NULL,
            PRIMARY KEY (task_id, seq)
        );

        CREATE TABLE ingest.task_rows (
            task_id   text NOT NULL REFERENCES ingest.tasks(id) ON DELETE CASCADE,
            row_no    integer NOT NULL,
            address   text NOT NULL,
            variables jsonb NOT NULL DEFAULT '{}',
            PRIMARY KEY (task_id, row_no)
        );
        CREATE UNIQUE INDEX task_rows_address ON ingest.task_rows (task_id, lower(address));

        CREATE TABLE ingest.task_invalid_rows (
            task_id text NOT NULL REFERENCES ingest.tasks(id) ON DELETE CASCADE,
            row_no  integer NOT NULL,
            address text NOT NULL,
            reason  text NOT NULL,
            PRIMARY KEY (task_id, row_no)
        );

        CREATE TABLE ingest.task_attachments (
            task_id      text NOT NULL REFERENCES ingest.tasks(id) ON DELETE CASCADE,
            id           text NOT NULL,
            filename     text NOT NULL,
            content_type text NOT NULL,
            size         integer NOT NULL,
            data         bytea NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (task_id, id)
        );

        INSERT INTO ingest.task_rows (task_id, row_no, address, variables)
        SELECT t.id, (r->>'row')::integer, r->>'address', COALESCE(r->'variables', '{}')
        FROM ingest.tasks t, jsonb_array_elements(t.recipients) r;
        INSERT INTO ingest.task_invalid_rows (task_id, row_no, address, reason)
        SELECT t.id, (r->>'row')::integer, r->>'address', r->>'reason'
        FROM ingest.tasks t, jsonb_array_elements(t.invalid_rows) r;
        ALTER TABLE ingest.tasks DROP COLUMN recipients, DROP COLUMN invalid_rows;
        """
    )


def downgrade() -> None:
    execute_script(
        """
        ALTER TABLE ingest.tasks
            ADD COLUMN recipients jsonb NOT NULL DEFAULT '[]',
            ADD COLUMN invalid_rows jsonb NOT NULL DEFAULT '[]';
        UPDATE ingest.tasks t SET
            recipients = COALESCE((SELECT jsonb_agg(jsonb_build_object('row', r.row_no,
                'address', r.address, 'variables', r.variables) ORDER BY r.row_no)
                FROM ingest.task_rows r WHERE r.task_id = t.id), '[]'),
            invalid_rows = COALESCE((SELECT jsonb_agg(jsonb_build_object('row', r.row_no,
                'address', r.address, 'reason', r.reason) ORDER BY r.row_no)
                FROM ingest.task_invalid_rows r WHERE r.task_id = t.id), '[]');
        DROP TABLE ingest.task_attachments, ingest.task_invalid_rows, ingest.task_rows,
            ingest.task_files;
        ALTER TABLE ingest.tasks DROP COLUMN file_name, DROP COLUMN file_format,
            DROP COLUMN file_size, DROP COLUMN sent_through, DROP COLUMN delivered,
            DROP COLUMN failed, DROP COLUMN counts_at;
        """
    )
