"""Templates: the parameter rules (each refusal names the parameter and the rule), the
content checks, plain single-pass substitution, and the trigger/batch type match."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postwire_common.errors import (
    EmptyValue,
    InvalidPermission,
    InvalidValue,
    MissingMacros,
    SizeExceeded,
)
from postwire_ingest.limits import MAX_TEMPLATE_BODY_BYTES
from postwire_ingest.templates import (
    PARAM_NAME_RULES,
    Draft,
    Rendered,
    check_draft,
    check_param_name,
    check_type,
    extract_params,
    render,
)

EMPTY, CHARS, DIGITS, START, LENGTH = PARAM_NAME_RULES


def draft(subject: str = "Hi {{name}}", text: str | None = "t", html: str | None = None) -> Draft:
    return Draft(name="welcome", subject=subject, text=text, html=html)


# -- parameter names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("name", None),
        ("Name_2", None),
        ("a", None),
        ("order_id_", None),
        ("x" * 64, None),
        ("", EMPTY),
        ("first name", CHARS),
        ("first-name", CHARS),
        ("naïve", CHARS),  # letters are A-Z and a-z
        ("a.b", CHARS),  # no attribute access
        ("7*7", CHARS),
        ("123", DIGITS),
        ("0", DIGITS),
        ("1abc", START),
        ("_abc", START),
        ("__class__", START),
        ("x" * 65, LENGTH),
    ],
)
def test_each_name_breaks_the_rule_it_breaks(name: str, rule: str | None) -> None:
    assert check_param_name(name) == rule


@pytest.mark.parametrize(
    ("subject", "text", "html", "message"),
    [
        ("Hi {{1st}}", None, None, f"subject: parameter {{{{1st}}}}: {START}"),
        ("Hi", "Dear {{_x}}", None, f"text: parameter {{{{_x}}}}: {START}"),
        ("Hi", None, "<p>{{first-name}}</p>", f"html: parameter {{{{first-name}}}}: {CHARS}"),
        ("Hi {{42}}", None, None, f"subject: parameter {{{{42}}}}: {DIGITS}"),
        ("Hi {{}}", None, None, f"subject: parameter {{{{}}}}: {EMPTY}"),
        ("Hi {{  }}", None, None, f"subject: parameter {{{{}}}}: {EMPTY}"),
        ("Hi {{a b}}", None, None, f"subject: parameter {{{{a b}}}}: {CHARS}"),
        ("{{user.name}}", None, None, f"subject: parameter {{{{user.name}}}}: {CHARS}"),
    ],
)
def test_a_bad_parameter_is_named_with_the_rule_it_breaks(
    subject: str, text: str | None, html: str | None, message: str
) -> None:
    with pytest.raises(InvalidValue) as refused:
        extract_params(subject, text, html)
    assert refused.value.description == message


def test_a_long_bad_name_is_shown_shortened() -> None:
    with pytest.raises(InvalidValue) as refused:
        extract_params("{{" + "-" * 500 + "}}", None, None)
    assert refused.value.description == f"subject: parameter {{{{{'-' * 40}…}}}}: {CHARS}"


def test_parameters_are_listed_once_in_order_of_first_use() -> None:
    assert extract_params(
        "Order {{order_id}} for {{ name }}",
        "Dear {{name}}, order {{order_id}} ships {{when}}",
        "<p>{{name}} {{coupon}}</p>",
    ) == ("order_id", "name", "when", "coupon")


def test_text_that_is_not_a_parameter_stays_text() -> None:
    assert extract_params("{single} ${7*7} {{ } }} {{{x}}}", "{ {a} }", None) == ("x",)


def test_at_most_15_distinct_parameters() -> None:
    fifteen = " ".join(f"{{{{p{i}}}}}" for i in range(15))
    assert len(extract_params("s", fifteen + " {{p0}} {{p14}}", None)) == 15
    with pytest.raises(InvalidValue) as refused:
        extract_params("{{p15}}", fifteen, None)
    assert refused.value.description.startswith(
        "a template has at most 15 distinct parameters; this one has 16: p15, p0, p1"
    )


# -- the whole draft ----------------------------------------------------------------------


def test_a_draft_answers_its_parameters() -> None:
    assert check_draft(draft("Hi {{name}}", "Code {{code}}", "<b>{{name}}</b>")) == (
        "name",
        "code",
    )


@pytest.mark.parametrize(
    ("made", "error", "message"),
    [
        (Draft(" ", "s", "t", None), EmptyValue, "name is required"),
        (Draft("n" * 65, "s", "t", None), InvalidValue, "name is longer than 64 characters"),
        (Draft("a\tb", "s", "t", None), InvalidValue, "name must not contain control characters"),
        (Draft("n", "  ", "t", None), EmptyValue, "subject is required"),
        (Draft("n", "s" * 257, "t", None), InvalidValue, "subject is longer than 256 characters"),
        (Draft("n", "a\r\nBcc: x@y", "t", None), InvalidValue, "subject must not contain"),
        (Draft("n", "s", None, None), EmptyValue, "text or html is required"),
        (Draft("n", "s", "", ""), EmptyValue, "text or html is required"),
        (Draft("n", "s", "é" * (MAX_TEMPLATE_BODY_BYTES // 2 + 1), None), SizeExceeded, "text"),
        (Draft("n", "s", None, "x" * (MAX_TEMPLATE_BODY_BYTES + 1)), SizeExceeded, "html is"),
    ],
)
def test_a_draft_breaking_a_rule_is_refused(
    made: Draft, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        check_draft(made)


def test_bodies_of_exactly_the_limit_are_taken() -> None:
    limit = "x" * MAX_TEMPLATE_BODY_BYTES
    assert check_draft(Draft("n", "s", limit, limit)) == ()
    assert check_draft(Draft("n", "s" * 256, "t", None)) == ()


# -- rendering ----------------------------------------------------------------------------


def test_render_fills_every_part_and_escapes_only_html() -> None:
    made = draft("Order {{id}}", "Dear {{name}}", '<a title="{{name}}">{{name}}</a>')
    assert render(made, {"id": "42", "name": 'Tom & "Jerry" <b>'}) == Rendered(
        subject="Order 42",
        text='Dear Tom & "Jerry" <b>',
        html='<a title="Tom &amp; &quot;Jerry&quot; &lt;b&gt;">Tom &amp; &quot;Jerry&quot; '
        "&lt;b&gt;</a>",
    )


def test_render_keeps_absent_parts_absent_and_ignores_unused_variables() -> None:
    assert render(draft("Hi", "plain", None), {"unused": "x"}) == Rendered("Hi", "plain", None)


def test_missing_values_are_named_all_at_once() -> None:
    made = draft("{{a}} {{b}}", "{{c}} {{a}}", "{{d}}")
    with pytest.raises(MissingMacros) as refused:
        render(made, {"b": "1"})
    assert refused.value.description == "no value for template parameters: a, c, d"


@pytest.mark.parametrize("value", ["a\rb", "a\nBcc: evil@example.org", "a\x00b", "a\u2028b"])
def test_a_value_cannot_inject_a_header_through_the_subject(value: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        render(draft("Hi {{name}}", "Dear {{other}}"), {"name": value, "other": "x"})
    assert refused.value.description.startswith("variables.name (used in the subject)")


def test_a_line_break_is_fine_in_a_body() -> None:
    made = draft("Hi", "Dear {{name}}", "<p>{{name}}</p>")
    assert render(made, {"name": "a\nb"}) == Rendered("Hi", "Dear a\nb", "<p>a\nb</p>")


def test_backslashes_and_group_references_in_values_arrive_as_written() -> None:
    made = draft("{{v}}", "{{v}}", None)
    got = render(made, {"v": r"\1 \g<0> \n $1"})
    assert got.subject == got.text == r"\1 \g<0> \n $1"


LITERALS = st.sampled_from(
    ["{{name}}", "{{other}}", "${7*7}", "{{7*7}}", "{% for x in y %}", "<script>", "{{", "}}"]
)
VALUES = st.lists(st.one_of(LITERALS, st.text(max_size=20)), max_size=6).map("".join)


@given(name=VALUES, other=VALUES)
def test_values_arrive_literally_and_are_never_read_again(name: str, other: str) -> None:
    made = draft("Dear", "Hi {{name}}, {{ other }}!", "<p>{{name}}|{{other}}</p>")
    got = render(made, {"name": name, "other": other})
    assert got.text == f"Hi {name}, {other}!"
    assert got.html == f"<p>{html.escape(name)}|{html.escape(other)}</p>"


@given(value=st.text().filter(lambda v: not re.search("[\x00-\x1f\x7f\x85\u2028\u2029]", v)))
def test_html_values_never_open_a_tag(value: str) -> None:
    made = draft("Hi {{v}}", "{{v}}", "<p>{{v}}</p>")
    got = render(made, {"v": value + "<script>alert(1)</script>"})
    assert got.html is not None
    assert "<script>" not in got.html
    assert got.subject == "Hi " + value + "<script>alert(1)</script>"  # a subject is text
    assert html.unescape(got.html) == f"<p>{value}<script>alert(1)</script></p>"


@given(names=st.lists(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,10}", fullmatch=True), max_size=15))
def test_valid_names_are_all_found(names: list[str]) -> None:
    text = " ".join(f"{{{{{n}}}}}" for n in names)
    assert extract_params("s", text, None) == tuple(dict.fromkeys(names))


# -- types --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["trigger", "batch"])
def test_a_template_is_sent_by_api_users_of_its_type(kind: str) -> None:
    check_type(kind, kind)


def test_a_type_mismatch_is_invalid_permission() -> None:
    with pytest.raises(InvalidPermission) as refused:
        check_type("batch", "trigger")
    assert refused.value.description == (
        "a batch template is sent by batch API users; this API user is a trigger one"
    )
