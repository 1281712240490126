"""SendCloud's forms mapped onto the send use case: xsmtpapi, %name% variables rendered by
templates.render, and domain errors answered with SendCloud's codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from postwire_common import errors
from postwire_ingest.templates import Rendered, render
from postwire_ingest.vendors.sendcloud import split_addresses
from postwire_ingest.vendors.sendcloud_codes import (
    AUTH,
    BODY_EMPTY,
    SERVER,
    SUBJECT_BAD,
    TOO_LARGE,
    XSMTPAPI_PARSE,
    Refused,
    refusing,
    translate,
)
from postwire_ingest.vendors.sendcloud_variables import (
    BRACE,
    parse_xsmtpapi,
    recipient_values,
    template_with_keys,
    transient_template,
)


def code_of(raw: Any) -> int:
    with pytest.raises(Refused) as refused:
        parse_xsmtpapi(raw if isinstance(raw, str) else json.dumps(raw))
    return refused.value.code.status


def test_split_addresses_on_semicolons() -> None:
    assert split_addresses(" a@x.org; ;b@y.org;") == ["a@x.org", "b@y.org"]


def test_xsmtpapi_values_become_strings_one_per_recipient() -> None:
    x = parse_xsmtpapi(json.dumps({"to": ["a@x.org", "b@x.org"], "sub": {"%m%": [288, "4.5"]}}))
    assert x.to == ["a@x.org", "b@x.org"]
    assert x.sub == {"%m%": ["288", "4.5"]}


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{", 40813),
        ([], 40813),
        ({"to": ["a@x.org"], "section": {}}, 40813),
        ({"sub": {}}, 40815),
        ({"to": []}, 40816),
        ({"to": [f"{n}@x.org" for n in range(101)]}, 40827),
        ({"to": ["a@x.org", "b@x.org"], "sub": {"%n%": ["only one"]}}, 40817),
        ({"to": ["a@x.org"], "sub": {"%n%": [True]}}, 40817),
    ],
)
def test_bad_xsmtpapi_answers_sendclouds_code(raw: Any, code: int) -> None:
    assert code_of(raw) == code


def test_transient_template_substitutes_keys_and_nothing_else() -> None:
    texts = Rendered("Bill for %name%", "{{x}} %name% owes %money%", "<b>%name%</b> {")
    template, names = transient_template(texts, ["%name%", "%money%"])
    values = {BRACE: "{", names["%name%"]: "<Ann>", names["%money%"]: "288"}
    rendered = render(template, values)
    assert rendered.subject == "Bill for <Ann>"
    assert rendered.text == "{{x}} <Ann> owes 288"  # the caller's braces stay text
    assert rendered.html == "<b>&lt;Ann&gt;</b> {"  # values escaped in HTML, as /v1 does


def test_longer_key_wins_over_its_prefix() -> None:
    template, names = transient_template(Rendered("%a% %ab%", None, None), ["%a", "%ab%"])
    values = {BRACE: "{", names["%a"]: "1", names["%ab%"]: "2"}
    assert render(template, values).subject == "1% 2"


def test_template_keys_fill_both_spellings() -> None:
    stored = Rendered("Hi %name%", "Dear {{name}}, %name%", None)
    template, names = template_with_keys(stored, ["%name%"])
    assert names == {"%name%": "name"}
    rendered = render(template, {"name": "Ann"})
    assert (rendered.subject, rendered.text) == ("Hi Ann", "Dear Ann, Ann")


def test_template_key_that_cannot_be_a_name_is_refused() -> None:
    with pytest.raises(Refused) as refused:
        template_with_keys(Rendered("s", "t", None), ["%{x}%"])
    assert refused.value.code is XSMTPAPI_PARSE


def test_recipient_values_first_spelling_wins() -> None:
    x = parse_xsmtpapi(
        json.dumps({"to": ["Ann <ANN@x.org>", "ann@x.org"], "sub": {"%n%": ["1", "2"]}})
    )
    assert recipient_values(x, {"%n%": "v0"}, {BRACE: "{"}) == {
        "ann@x.org": {BRACE: "{", "v0": "1"}
    }


@pytest.mark.parametrize(
    ("error", "templated", "code"),
    [
        (errors.AuthorizationFailed("x"), False, AUTH),
        (errors.EmptyValue("x"), False, BODY_EMPTY),
        (errors.SizeExceeded("x"), False, TOO_LARGE),
        (errors.MissingMacros("x"), True, XSMTPAPI_PARSE),
        (errors.InvalidValue("x"), True, XSMTPAPI_PARSE),
        (errors.InvalidValue("x"), False, SUBJECT_BAD),
        (errors.InternalError("x"), False, SERVER),
    ],
)
def test_domain_errors_left_after_the_checks(
    error: errors.PostwireError, templated: bool, code: object
) -> None:
    assert translate(error, templated=templated).code is code


def test_refused_body_is_sendclouds_shape() -> None:
    with pytest.raises(Refused) as refused, refusing(BODY_EMPTY, errors.EmptyValue):
        raise errors.EmptyValue("text or html is required")
    assert refused.value.body() == {
        "result": False,
        "statusCode": 40870,
        "message": "html和plain不能同时为空 (text or html is required)",
        "info": {},
    }
    assert AUTH("wrong api_user or api_key").body()["message"] == "认证失败"
