"""Limits from the seeds, one place."""

MAX_MESSAGE_BYTES = 10 * 1024 * 1024  # Devino: a message up to 10 MB
MAX_REQUEST_BYTES = 15 * 1024 * 1024  # 10 MB of attachments is ~13.4 MB as base64 JSON
MAX_RECIPIENTS = 100  # per POST /v1/messages (Aliyun SingleSendMail)
MAX_DOMAINS_PER_ACCOUNT = 10  # KooMessage
MAX_TLS_POLICIES_PER_ACCOUNT = 1000  # ours: rules are small, but read on every send
MAX_SUBJECT_CHARS = 998
MAX_LABEL_CHARS = 64
MAX_LABELS_PER_ACCOUNT = 10_000  # ours: SendCloud does not say
MAX_CUSTOM_HEADERS = 50
MAX_ATTACHMENTS = 100
MAX_TEMPLATE_PARAMS = 15  # KooMessage: distinct {{name}} parameters of a template
MAX_TEMPLATES_PER_ACCOUNT = 1000  # ours below: the seeds do not say
MAX_TEMPLATE_NAME_CHARS = 64
MAX_TEMPLATE_SUBJECT_CHARS = 256
MAX_TEMPLATE_BODY_BYTES = 1024 * 1024  # each of text and HTML, as UTF-8
# A request holds two 1 MB bodies; JSON escapes (\" and \u00e9) can make them 2-3 times larger.
MAX_TEMPLATE_REQUEST_BYTES = 8 * 1024 * 1024
MAX_TASK_FILE_BYTES = 40 * 1024 * 1024  # KooMessage: a recipients file up to 40 MB
MAX_TASK_ROWS = 1_000_000  # ours: 40 MB holds about that many short rows
MAX_TASK_REQUEST_BYTES = MAX_TASK_FILE_BYTES + 256 * 1024  # the file and the form fields
MAX_TASK_ATTACHMENT_BYTES = 4 * 1024 * 1024  # API.md: a task's attachments, 4 MB in all
MAX_TASK_ATTACHMENTS = 10  # ours: per task
# One POST of a task attachment: 4 MB is ~5.3 MB as base64 JSON; multipart adds little.
MAX_TASK_ATTACHMENT_REQUEST_BYTES = 6 * 1024 * 1024
