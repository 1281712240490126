"""ingest: every template gets an integer number, Tencent SES's TemplateID.

Our template ids are text; Tencent's SDKs type TemplateID as an integer (CreateEmailTemplate
answers it, SendEmail and DeleteEmailTemplate take it). An identity column numbers the
existing templates and every new one; the Tencent surface maps one to the other.

Revision ID: 0017
"""

from postwire_common.migrations import execute_script

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    execute_script(
        "ALTER TABLE ingest.templates ADD COLUMN number bigint GENERATED ALWAYS AS IDENTITY "
        "CONSTRAINT templates_number_key UNIQUE;"
    )


def downgrade() -> None:
    execute_script("ALTER TABLE ingest.templates DROP COLUMN number;")
