"""Aliyun DirectMail's parameters as ingest reads them."""

from __future__ import annotations

import pytest

from postwire_common.vendors.aliyun import AliyunError
from postwire_ingest.receiver_store import Member
from postwire_ingest.vendors.aliyun import mailbox, recipients
from postwire_ingest.vendors.aliyun_receivers import parse_details


def test_to_address_is_a_comma_list_of_up_to_100() -> None:
    assert recipients(" a@x.org, b@x.org ,") == ["a@x.org", "b@x.org"]
    with pytest.raises(AliyunError) as many:
        recipients(",".join(f"r{n}@x.org" for n in range(101)))
    assert many.value.code == "InvalidToAddress"
    with pytest.raises(AliyunError):
        recipients(" , ")


def test_an_alias_is_quoted() -> None:
    assert mailbox(None, "a@x.org") == "a@x.org"
    assert mailbox('Shop "Spring"', "a@x.org") == '"Shop \\"Spring\\"" <a@x.org>'


def test_receiver_details_in_both_of_aliyuns_forms() -> None:
    members, refused = parse_details(
        '[{"e": "ann@x.org", "n": "Ann", "b": "2000-01-01"},'
        ' {"Email": "bob@x.org", "Data": "{\\"City\\": \\"Oslo\\"}"},'
        ' {"e": "ANN@x.org", "n": "again"}, {"e": "nobody"}, {"e": "c@x.org", "z": 1}, 7]'
    )
    assert members == [
        Member("ann@x.org", {"NickName": "Ann", "Birthday": "2000-01-01"}),
        Member("bob@x.org", {"City": "Oslo"}),
    ]
    assert [address for address, _ in refused] == ["ANN@x.org", "nobody", "c@x.org", "None"]


@pytest.mark.parametrize("detail", ["", "{}", "[]", "not json", "[" + "{}," * 500 + "{}]"])
def test_a_detail_that_is_not_a_list_of_up_to_500_is_refused(detail: str) -> None:
    with pytest.raises(AliyunError) as refused:
        parse_details(detail)
    assert refused.value.code == "InvalidParameter"
