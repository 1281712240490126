"""Tencent SES's SendEmail and template parameters into our send command and drafts."""

from __future__ import annotations

import base64

import pytest

from postwire_common.errors import InvalidValue
from postwire_common.vendors.tencent import TencentError
from postwire_ingest.vendors.tencent import (
    SendEmail,
    attachments_of,
    headers_of,
    refuse_unsupported,
    template_values,
)
from postwire_ingest.vendors.tencent_templates import CreateTemplate, draft_of

NOT_UTF8 = base64.b64encode(b"\xff").decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def code(error: pytest.ExceptionInfo[TencentError]) -> str:
    return error.value.code


def mail(**fields: object) -> SendEmail:
    return SendEmail.model_validate({"FromEmailAddress": "a@example.org", **fields})


@pytest.mark.parametrize(
    ("data", "values"),
    [
        (None, {}),
        ("", {}),
        ('{"name": "Ann", "age": 42, "ratio": 0.5}', {"name": "Ann", "age": "42", "ratio": "0.5"}),
        ('{"html": "<b>x</b>"}', {"html": "<b>x</b>"}),  # escaped when rendered, not refused
    ],
)
def test_template_data_is_a_json_object_of_texts(data: str | None, values: dict[str, str]) -> None:
    assert template_values(data) == values


@pytest.mark.parametrize(
    "data", ["{", "[1]", '"x"', '{"a": {"b": 1}}', '{"a": true}', '{"a": null}']
)
def test_other_template_data_is_refused(data: str) -> None:
    with pytest.raises(TencentError) as raised:
        template_values(data)
    assert code(raised) == "InvalidParameterValue.TemplateDataError"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"Cc": ["c@example.org"]}, "Cc"),
        ({"Bcc": ["c@example.org"]}, "Bcc"),
        ({"SmtpMessageId": "<x@example.org>"}, "SmtpMessageId"),
        ({"HeaderFrom": "a@example.org"}, "HeaderFrom"),
        ({"Attachments": [{"FileName": "a.pdf", "FileURL": "https://x/a.pdf"}]}, "FileURL"),
    ],
)
def test_fields_without_a_meaning_here_are_named_not_ignored(
    fields: dict[str, object], named: str
) -> None:
    with pytest.raises(TencentError) as raised:
        refuse_unsupported(mail(**fields))
    assert code(raised) == "UnsupportedOperation"
    assert named in raised.value.message


def test_empty_cc_and_bcc_are_no_request_for_them() -> None:
    refuse_unsupported(mail(Cc=[], Bcc=[], Destination=["b@example.org"]))


def test_reply_to_and_smtp_headers_become_headers() -> None:
    headers = headers_of(
        mail(ReplyToAddresses="Help <help@example.org>", SmtpHeaders='{"X-Campaign": "spring"}')
    )
    assert headers == {"X-Campaign": "spring", "Reply-To": "Help <help@example.org>"}
    with pytest.raises(TencentError):
        headers_of(mail(SmtpHeaders='{"X-A": 1}'))
    with pytest.raises(InvalidValue):
        headers_of(mail(ReplyToAddresses="a\r\nBcc: x@example.org"))


def test_attachments_are_decoded_or_refused_with_tencents_code() -> None:
    [made] = attachments_of(mail(Attachments=[{"FileName": "a.pdf", "Content": b64("%PDF")}]))
    assert (made.filename, made.data) == ("a.pdf", b"%PDF")
    with pytest.raises(TencentError) as raised:
        attachments_of(mail(Attachments=[{"FileName": "a.pdf", "Content": "%%%"}]))
    assert code(raised) == "InvalidParameterValue.AttachContentIsWrong"


def test_a_tencent_template_is_a_draft_named_and_subjected_by_its_name() -> None:
    given = CreateTemplate.model_validate(
        {"TemplateName": "welcome", "TemplateContent": {"Html": b64("<p>Hi {{name}}</p>")}}
    )
    draft = draft_of(given)
    assert (draft.name, draft.subject, draft.html, draft.text) == (
        "welcome", "welcome", "<p>Hi {{name}}</p>", None,
    )  # fmt: skip
    for content, expected in (
        ({}, "InvalidParameterValue.TemplateContentIsNULL"),
        ({"Text": "???"}, "InvalidParameterValue.TemplateContentIsWrong"),
        ({"Text": NOT_UTF8}, "InvalidParameterValue.TemplateContentIsWrong"),
    ):
        with pytest.raises(TencentError) as raised:
            draft_of(
                CreateTemplate.model_validate({"TemplateName": "t", "TemplateContent": content})
            )
        assert code(raised) == expected
