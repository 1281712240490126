"""Tasks whose recipients come as a CSV or XLSX upload: checked at once for the header,
expanded in the background with invalid and duplicate rows reported by row number, then
sent, each recipient with their own values."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from openpyxl import Workbook, load_workbook

from postwire_testkit.api import Tenant, envelope
from postwire_testkit.smtp import SmtpSink
from postwire_testkit.wait import eventually

SUBJECT = "Offer for {{name}}"


def result(answer: httpx.Response, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return envelope(answer)["Result"]


async def template(tenant: Tenant) -> str:
    body = {
        "name": "offer",
        "type": "trigger",
        "subject": SUBJECT,
        "html": "<p>{{name}}: {{code}}</p>",
    }
    return str(result(await tenant.client("ingest").post("/v1/templates", json=body), 201)["id"])


async def upload(
    tenant: Tenant, template_id: str, name: str, data: bytes, **fields: str
) -> httpx.Response:
    form = {"name": "spring", "template_id": template_id, "from": tenant.sender, **fields}
    return await tenant.client("ingest").post(
        "/v1/tasks", data=form, files={"file": (name, data, "application/octet-stream")}
    )


async def settled(tenant: Tenant, task_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        task = result(await tenant.client("ingest").get(f"/v1/tasks/{task_id}"))
        return task if task["state"] in ("completed", "failed", "cancelled") else None

    found: dict[str, Any] = await eventually(done, within=60, what="the task to finish")
    return found


def xlsx(rows: list[list[Any]]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_csv_task_reports_bad_rows_by_number_and_sends_the_rest(
    tenant: Tenant, mx: SmtpSink
) -> None:
    template_id = await template(tenant)
    ann, bob = f"ann.{tenant.name}@example.org", f"bob.{tenant.name}@example.net"
    csv = (
        "\ufeffaddress,name,code,ignored\r\n"  # Excel's BOM; extra columns are ignored
        f"{ann},Ann <b>,A1,x\r\n"
        "not an address,Nobody,N,x\r\n"
        f'{bob},"Bob, Jr.",B2,x\r\n'
        f"{ann.upper()},Ann again,A3,x\r\n"
        ",,,\r\n"  # an empty row: skipped, not reported
        f"carl.{tenant.name}@example.org,,C4,x\r\n"  # no value for name
    )
    made = result(await upload(tenant, template_id, "list.csv", csv.encode()), 201)
    assert (made["state"], made["file_name"], made["file_format"]) == (
        "preparing", "list.csv", "csv"
    )  # fmt: skip
    done = await settled(tenant, made["id"])
    assert done["state"] == "completed", done
    assert (done["total"], done["invalid"], done["queued"]) == (5, 3, 2)
    assert [(r["row"], r["reason"]) for r in done["invalid_rows"]] == [
        (3, done["invalid_rows"][0]["reason"]),
        (5, "duplicate of row 2"),
        (7, "no value for template parameters: name"),
    ]
    assert done["invalid_rows"][0]["address"] == "not an address"

    async def both() -> bool:
        return bool(mx.for_rcpt(ann)) and bool(mx.for_rcpt(bob))

    await eventually(both, what="both recipients' mail")
    [to_ann] = mx.for_rcpt(ann)
    assert to_ann.message["Subject"] == "Offer for Ann <b>"
    html = to_ann.message.get_body(("html",))
    assert html is not None
    assert "<p>Ann &lt;b&gt;: A1</p>" in html.get_content()
    [to_bob] = mx.for_rcpt(bob)
    assert to_bob.message["Subject"] == "Offer for Bob, Jr."

    async def counted() -> dict[str, Any] | None:
        task = result(await tenant.client("ingest").get(f"/v1/tasks/{made['id']}"))
        return task if (task["delivered"], task["failed"]) == (2, 0) else None

    await eventually(counted, within=30, what="the task's delivered count from events")

    page = result(
        await tenant.client("ingest").get(
            f"/v1/tasks/{made['id']}/invalid-rows", params={"after": 3, "limit": 1}
        )
    )
    assert ([r["row"] for r in page["invalid_rows"]], page["next_after"]) == ([5], 5)


async def test_an_xlsx_task_sends_each_row_its_values(tenant: Tenant, mx: SmtpSink) -> None:
    template_id = await template(tenant)
    dora = f"dora.{tenant.name}@example.org"
    data = xlsx(
        [["Address", "code", "name"], [dora, 42, "Dora"], [None, None, None], ["x@", 1, "X"]]
    )
    made = result(await upload(tenant, template_id, "list.xlsx", data), 201)
    assert made["file_format"] == "xlsx"
    done = await settled(tenant, made["id"])
    assert (done["state"], done["total"], done["invalid"], done["queued"]) == (
        "completed", 2, 1, 1
    )  # fmt: skip
    assert [r["row"] for r in done["invalid_rows"]] == [4]

    async def arrived() -> bool:
        return bool(mx.for_rcpt(dora))

    await eventually(arrived, what="dora's mail")
    html = mx.for_rcpt(dora)[0].message.get_body(("html",))
    assert html is not None
    assert "<p>Dora: 42</p>" in html.get_content()  # a number cell, as typed


async def test_a_file_refused_at_upload_makes_no_task(tenant: Tenant) -> None:
    template_id = await template(tenant)
    tasks = "/v1/tasks"
    before = result(await tenant.client("ingest").get(tasks))["tasks"]

    no_column = await upload(tenant, template_id, "l.csv", b"address,name\na@example.org,A\n")
    assert (no_column.status_code, envelope(no_column)["Code"]) == (400, "missing_macros")
    assert "code" in envelope(no_column)["Description"]
    no_address = await upload(tenant, template_id, "l.csv", b"email,name,code\na@example.org,A,1\n")
    assert envelope(no_address)["Code"] == "invalid_value"
    binary = await upload(tenant, template_id, "l.csv", b"\x00\x01\x02garbage")
    assert envelope(binary)["Code"] == "invalid_value"
    broken_zip = await upload(tenant, template_id, "l.xlsx", b"PK\x03\x04" + b"\x00" * 100)
    assert envelope(broken_zip)["Code"] == "invalid_value"
    empty = await upload(tenant, template_id, "l.csv", b"")
    assert empty.status_code == 400, empty.text
    no_file = await tenant.client("ingest").post(
        tasks, data={"name": "x", "template_id": template_id, "from": tenant.sender},
        files={"other": ("a.txt", b"x")},
    )  # fmt: skip
    assert no_file.status_code == 400, no_file.text
    assert result(await tenant.client("ingest").get(tasks))["tasks"] == before


async def test_a_file_task_can_be_cancelled_while_preparing_or_scheduled(
    tenant: Tenant, mx: SmtpSink
) -> None:
    template_id = await template(tenant)
    rows = "".join(f"r{n}.{tenant.name}@example.org,N{n},C{n}\n" for n in range(50))
    made = result(
        await upload(
            tenant, template_id, "l.csv", f"address,name,code\n{rows}".encode(),
            send_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        ),
        201,
    )  # fmt: skip
    state = f"/v1/tasks/{made['id']}/state"
    cancelled = result(await tenant.client("ingest").put(state, json={"state": "cancelled"}))
    assert cancelled["state"] == "cancelled"
    shown = await settled(tenant, made["id"])
    assert (shown["state"], shown["queued"]) == ("cancelled", 0)
    assert mx.for_rcpt(f"r0.{tenant.name}@example.org") == []


async def test_the_sample_file_comes_as_xlsx_too(tenant: Tenant) -> None:
    template_id = await template(tenant)
    answer = await tenant.client("ingest").get(
        "/v1/tasks/sample", params={"template_id": template_id, "format": "xlsx"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    sheet = load_workbook(io.BytesIO(answer.content), read_only=True).worksheets[0]
    header = next(sheet.iter_rows(values_only=True))
    assert list(header) == ["address", "name", "code"]


async def test_a_tasks_attachments_reach_every_recipient(tenant: Tenant, mx: SmtpSink) -> None:
    template_id = await template(tenant)
    eve = f"eve.{tenant.name}@example.org"
    soon = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    made = result(
        await upload(
            tenant, template_id, "l.csv", f"address,name,code\n{eve},Eve,E1\n".encode(),
            send_at=soon,
        ),
        201,
    )  # fmt: skip
    attachments = f"/v1/tasks/{made['id']}/attachments"
    client = tenant.client("ingest")
    refused = await client.post(
        attachments, files={"file": ("Report.PDF.exe", b"MZ", "application/pdf")}
    )
    assert (refused.status_code, envelope(refused)["Code"]) == (400, "invalid_value")
    added = await client.post(
        attachments, files={"file": ("price list.pdf", b"%PDF-1.4 x", "application/pdf")}
    )
    assert added.status_code == 201, added.text
    done = await settled(tenant, made["id"])
    assert (done["state"], done["queued"]) == ("completed", 1)

    async def arrived() -> bool:
        return bool(mx.for_rcpt(eve))

    await eventually(arrived, what="eve's mail")
    [part] = list(mx.for_rcpt(eve)[0].message.iter_attachments())
    assert part.get_filename() == "price list.pdf"
    assert part.get_content() == b"%PDF-1.4 x"
    late = await client.post(attachments, files={"file": ("late.pdf", b"%PDF", "application/pdf")})
    assert (late.status_code, envelope(late)["Code"]) == (400, "not_available")
