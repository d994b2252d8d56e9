"""Buyer identity: normalisers and the incremental resolver (pure, no Kafka)."""

from __future__ import annotations

import io
import json

import pytest

from streams.identity import normalize as norm
from streams.identity.resolver import Resolver


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("X.Wang+fair@GoogleMail.com", "xwang@gmail.com"),  # Gmail ignores dots and tags
        ("Li.Na+2026@outlook.com", "li.na@outlook.com"),  # Outlook ignores tags, not dots
        ("a.b@163.com", "a.b@163.com"),  # NetEase keeps both: a.b and ab are two mailboxes
        ("  MA.YING@QQ.COM ", "ma.ying@qq.com"),
        ("not-an-email", None),
        (None, None),
    ],
)
def test_emails_follow_only_real_provider_rules(raw: str | None, expected: str | None) -> None:
    assert norm.email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+86 138 0013 8000", "CN", "+8613800138000"),
        ("0086 138-0013-8000", "CN", "+8613800138000"),
        ("13800138000", None, "+8613800138000"),
        ("00852 6360 6636", "HK", "+85263606636"),  # 00 typed although HK dials 001
        ("(+852) 63606636", "HK", "+85263606636"),
        ("34-6194-5108", "IT", "+393461945108"),
        ("0081 90 2317 8214", "JP", "+819023178214"),
        ("12", "CN", None),
    ],
)
def test_phones_become_e164(raw: str, country: str | None, expected: str | None) -> None:
    assert norm.phone(raw, country) == expected


def test_hanzi_pinyin_and_either_order_share_a_name_form() -> None:
    forms = [norm.name_forms(n) for n in ("王秀英", "Wang Xiuying", "Xiuying Wang",
                                          "WangXiuying", "WANG xiuying")]
    assert all(f == forms[0] for f in forms)
    assert norm.name_forms("曾晨然") & norm.name_forms("Zeng Chenran")  # surname reading


def test_company_suffixes_and_punctuation_are_stripped() -> None:
    assert norm.company("Atelier Riva S.r.l.") == norm.company("ATELIER RIVA SRL")
    assert norm.company("广州启航服装有限公司") == norm.company("广州启航服装股份有限公司")
    assert norm.company("Osaka Textile Co., Ltd.") == norm.company("Osaka Textile Company Limited")


def record(rid: str, **fields: str | None) -> dict:
    return {"id": rid, **fields}


def test_the_same_buyer_arriving_differently_resolves_to_one_id() -> None:
    r = Resolver()
    first = r.add(record("reg", full_name="王秀英", email="xiuying.wang@gmail.com",
                         phone="+86 136 1785 3545", country="CN"))
    assert r.add(record("inq1", full_name="wang xiuying", email="XiuyingWang+fw@gmail.com")) \
        == first
    assert r.add(record("inq2", full_name="Wang Xiuyng", phone="136-1785-3545")) == first


def test_a_common_name_alone_is_not_a_match() -> None:
    r = Resolver()
    a = r.add(record("a", full_name="王伟", company="柯桥纺织有限公司", city="绍兴",
                     phone="13800000001"))
    b = r.add(record("b", full_name="王伟", company="柯桥纺织有限公司", city="绍兴",
                     phone="13900000002"))
    assert a != b


def test_a_shared_phone_with_unrelated_names_is_not_one_person() -> None:
    r = Resolver()
    a = r.add(record("a", full_name="Li Na", phone="+86 20 8888 0000"))
    b = r.add(record("b", full_name="Zhang Wei", phone="020 8888 0000"))
    assert a != b


def test_a_linking_record_merges_two_buyers_and_the_older_survives() -> None:
    r = Resolver()
    a = r.add(record("scan-badge", full_name="Karen Lee", phone="+852 6360 6636", country="HK"))
    b = r.add(record("inquiry", full_name="李君", email="klee90@outlook.com"))
    assert a != b
    linked = r.add(record("later", full_name="Karen Lee", email="KLee90+fair@outlook.com",
                          phone="00852 6360 6636", country="HK"))
    assert linked == a == r.buyer_of("inquiry")
    merge = r.merges[-1]
    assert (merge.survivor, merge.absorbed, merge.record_id) == (a, b, "later")
    assert "email" in merge.evidence and merge.score == 1.0


def test_a_mailbox_variant_needs_a_name_and_nothing_against_it() -> None:
    r = Resolver()
    a = r.add(record("a", full_name="Sarah Davis", email="davis_sarah@icloud.com",
                     phone="+1 917 555 2357", country="US"))
    assert r.add(record("b", full_name="S. Davis", email="davis_.sarah@icloud.com")) == a
    other = r.add(record("c", full_name="王秀英", email="wang_xiuying@163.com",
                         phone="19372794829"))
    assert r.add(record("d", full_name="王秀英", email="wangxiuying@163.com",
                        phone="15527171610")) != other  # different phones: two people


def test_weak_evidence_joins_one_buyer_never_two() -> None:
    r = Resolver()
    a = r.add(record("a", full_name="Kenji Yamamoto", email="yamamoto.kenji@docomo.ne.jp",
                     phone="+81 90 3333 4444"))
    b = r.add(record("b", full_name="Kenji Yamamoto", email="yamamoto_kenji@docomo.ne.jp",
                     phone="+81 90 1111 2222"))
    # fits both mailboxes once punctuation is ignored: ambiguous, so it joins neither
    c = r.add(record("c", full_name="Yamamoto Kenji", email="yamamotokenji@docomo.ne.jp"))
    assert len({a, b, c}) == 3 and r.merges == []


def test_weak_evidence_is_vetoed_by_any_record_of_the_buyer() -> None:
    r = Resolver()
    a = r.add(record("a", full_name="Daniel Johnson", email="johnson_daniel@yahoo.com",
                     phone="+1 212 555 8692"))
    r.add(record("a2", full_name="daniel johnson", email="johnson_daniel@yahoo.com"))
    other = r.add(record("b", full_name="Daniel Johnson", email="johnsondaniel@yahoo.com",
                         phone="+1 212 555 5653"))
    assert other != a  # a2 alone has no phone, but its buyer does, and it differs


def test_resolve_command_reads_json_lines_and_reports_bad_ones() -> None:
    from leadloom.commands.resolve import resolve_lines

    lines = ['{"id": "r1", "full_name": "王秀英", "email": "x.wang@gmail.com", "x": 1}',
             "not json", '{"id": "r2", "full_name": "Wang Xiuying", "email": "XWang@gmail.com"}',
             '{"full_name": "no id"}']
    out, warnings = io.StringIO(), []
    assert resolve_lines(lines, out, warnings.append) == (2, 2)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert rows == [{"id": "r1", "buyer_id": "buyer:r1"}, {"id": "r2", "buyer_id": "buyer:r1"}]
    assert [w.split(":")[0] for w in warnings] == ["line 2", "line 4"]


def test_a_shared_badge_is_one_buyer_whatever_the_names():
    r = Resolver()
    scan = r.add({"id": "badge:B1", "badge_id": "B1"})
    reg = r.add({"id": "reg-1", "badge_id": "B1", "full_name": "王秀英", "email": "x@163.com"})
    other = r.add({"id": "reg-2", "badge_id": "B2", "full_name": "王秀英"})
    assert scan == reg == "badge:B1"
    assert other == "reg-2"


def test_a_name_with_two_corroborating_fields_joins_its_buyer() -> None:
    r = Resolver()
    reg = r.add(record("reg", full_name="邹欣瑶", company="杭州锦绣服装有限公司",
                       email="49036508@qq.com", phone="15943954376", city="杭州市",
                       address="上城区金桥大道628号6幢1203室", postcode="310076", country="CN"))
    # another mailbox, no phone: only the name, the company and the address numbers agree
    inquiry = r.add(record("inq", full_name="Zou Xinyao", company="杭州锦绣服装有限责任公司",
                           email="zouxinyao@jinxiugarment.com", city="杭州",
                           address="金桥大道628号6-1203"))
    assert inquiry == reg
    assert r.merges == []  # weak evidence joins, it never merges


def test_a_name_with_one_corroborating_field_is_not_a_match() -> None:
    r = Resolver()
    reg = r.add(record("reg", full_name="Julien Dubois", company="Atelier Durand SAS",
                       email="jdubois@atelierdurand.fr", phone="+33 6 93 30 87 94",
                       city="Paris"))
    assert r.add(record("inq", full_name="Dubois Julien", company="Atelier Durand SARL",
                        city="PARIS")) != reg


def test_a_record_fitting_two_namesakes_joins_neither() -> None:
    r = Resolver()
    fields = dict(full_name="Harry Evans", company="Savile Sourcing Limited", city="London",
                  address="12 Old Street", postcode="W1B 3AH", country="GB")
    a = r.add(record("a", email="evans.harry@btinternet.com", phone="+44 20 1804 7372",
                     **fields))
    b = r.add(record("b", email="harry@savilesourcing.co.uk", phone="+44 7700 900123",
                     **fields))
    # colleagues of one name at one address: the inquiry's fields fit both of them
    c = r.add(record("c", full_name="Evans Harry", company="Savile Sourcing Ltd",
                     email="evans_harry@gmail.com", address="12 OLD ST.", postcode="W1B 3AH"))
    assert len({a, b, c}) == 3


def test_a_name_is_not_joined_when_any_field_tells_them_apart() -> None:
    def registered() -> tuple[Resolver, str]:
        r = Resolver()
        reg = r.add(record("reg", full_name="刘英婷",
                           company="深圳简素纺织品股份有限公司", phone="152-9978-6587",
                           city="深圳市", postcode="518007",
                           address="南山区世纪大道77号11幢1002室"))
        r.add(record("inq1", full_name="刘英婷", email="liu.yt@jiansutextiles.com.cn",
                     phone="152-9978-6587"))  # joins by phone: she has a work mailbox
        return r, reg

    fits = dict(full_name="刘英婷", company="深圳简素纺织品",
                address="世纪大道77号11-1002")
    r, reg = registered()
    assert r.add(record("same", postcode="518007", **fits)) == reg
    r, reg = registered()
    assert r.add(record("other_postcode", postcode="518099", **fits)) != reg
    r, reg = registered()
    # another mailbox at her firm's domain belongs to someone else
    assert r.add(record("other_mailbox", email="ying@jiansutextiles.com.cn", **fits)) != reg


def test_a_mistyped_mailbox_that_is_a_namesakes_does_not_merge_the_two() -> None:
    r = Resolver()
    namesake = r.add(record("a", full_name="Suzuki Aoi", email="suzuki.aoi@docomo.ne.jp",
                            phone="+81-90-6229-2166", country="JP"))
    own = r.add(record("b", full_name="Suzuki Aoi", email="suzukiaoi@docomo.ne.jp",
                       phone="+81 90 1382 5749", country="JP"))
    typed = r.add(record("c", full_name="Suzuki Aoi", email="suzuki.aoi@docomo.ne.jp",
                         phone="0081 90 1382 5749", country="JP"))
    assert typed == own != namesake and r.merges == []


def test_a_national_number_without_a_country_does_not_tell_records_apart() -> None:
    r = Resolver()
    reg = r.add(record("reg", full_name="David Wilson", email="wilsondavid@yahoo.com",
                       phone="+1 212 555 2273", country="US"))
    # read as Chinese for want of a country, the phone differs; the mailbox is still his
    assert r.add(record("inq", full_name="Wilson David", email="wilsondavid@yahoo.com",
                        phone="212 555 2273")) == reg


@pytest.mark.parametrize(("hanzi", "latin"), [
    ("田丽东", "Raymond Tin"), ("程欣博", "Ching Derek"), ("严怡佳", "Eric Yim"),
    ("吕平博", "Lyu Ping Bo"),
])
def test_cantonese_and_lyu_surnames_are_one_persons(hanzi: str, latin: str) -> None:
    r = Resolver()
    a = r.add(record("a", full_name=latin, phone="+852 6141 6464", country="HK"))
    assert r.add(record("b", full_name=hanzi, phone="+852 6141 6464", country="HK")) == a


def test_a_badge_scanned_before_registering_does_not_block_weak_evidence() -> None:
    r = Resolver()
    reg = r.add(record("reg", full_name="邹欣瑶", company="杭州锦绣服装有限公司",
                       email="49036508@qq.com", phone="15943954376", city="杭州市",
                       address="上城区金桥大道628号6幢1203室", postcode="310076", country="CN"))
    scans = r.add({"id": "badge:B2", "badge_id": "B2"})  # a reissued badge, scanned first
    # the second registration: the new badge, another mailbox, the same name and firm
    second = r.add(record("reg-2", badge_id="B2", full_name="Zou Xinyao",
                          company="杭州锦绣服装有限责任公司",
                          email="zouxinyao@jinxiugarment.com", city="杭州",
                          address="金桥大道628号6-1203"))
    assert second == reg and r.find(scans) == reg
    (merge,) = r.merges
    assert (merge.survivor, merge.absorbed) == ("reg", "badge:B2")
