"""Contact fields as a buyer types them: at the kiosk, again after losing a badge, in an
online inquiry. Same person, drifting fields; every drift is tagged for the ground truth.
"""

from __future__ import annotations

import random

from producers.simulator import lexicon as lx
from producers.simulator import variants as va
from producers.simulator.buyers import Buyer, Name
from producers.simulator.params import SimulationParams

Contact = dict[str, object]


def registration_contact(rng: random.Random, b: Buyer, consent_p: float) -> Contact:
    """Fields as typed at the kiosk (the buyer's canonical forms, a few left blank)."""
    pl = b.place
    return {
        "full_name": b.reg_name, "company": b.reg_company, "email": b.email,
        "phone": b.phone_as(b.phone_style), "wechat_id": b.wechat, "country": b.country,
        "province": pl.province, "city": pl.city,
        "address": pl.line if rng.random() < 0.92 else None,
        "postcode": pl.postcode if rng.random() < 0.85 else None,
        "consent": rng.random() < consent_p,
    }


def reissue_contact(rng: random.Random, b: Buyer, consent_p: float) -> tuple[Contact, list[str]]:
    """A second registration after a lost badge: mostly the same, typed again in a hurry."""
    contact = registration_contact(rng, b, consent_p)
    tags = ["reissued_badge"]
    if rng.random() < 0.4:
        contact["phone"] = b.phone_as(va.other_phone_style(rng, b.phone_style, b.phone[0]))
        tags.append("phone_format")
    if rng.random() < 0.3:
        contact["email"], tag = va.email_variant(rng, b.email, b.other_email)
        tags.append(tag)
    if rng.random() < 0.5:
        contact["address"] = contact["postcode"] = None
    return contact, tags


def inquiry_contact(rng: random.Random, b: Buyer, channel: str, params: SimulationParams
                    ) -> tuple[Contact, list[str]]:
    """Fields as typed into an inquiry form: the buyer's fields, drifted; plus drift tags."""
    consent = rng.random() < params.inquiry_consent
    wechat_only = params.inquiry_wechat_only * (1.6 if channel == "wechat" else 0.5)
    if b.wechat and rng.random() < wechat_only:
        name = _name_variant(rng, b)[0] if rng.random() < 0.5 else None
        return {"wechat_id": b.wechat, "full_name": name, "consent": consent}, ["wechat_only"]
    tags: list[str] = []
    full_name, tag = _name_variant(rng, b)
    tags.append(tag)
    email, tag = va.email_variant(rng, b.email, b.other_email)
    tags.append(tag)
    r = rng.random()
    if r < 0.2:
        phone: str | None = b.phone_as(b.phone_style)
        tags.append("phone_same")
    elif r < 0.72:
        phone = b.phone_as(va.other_phone_style(rng, b.phone_style, b.phone[0]))
        tags.append("phone_format")
    else:
        phone = None
    company, tag = _company_variant(rng, b)
    tags.append(tag)
    pl = b.place
    r = rng.random()
    address: str | None = pl.line
    if r < 0.3:
        address = None
    elif r < 0.72:
        tag, address = rng.choice(pl.forms)
        tags.append(tag)
    alt = rng.random()
    province = pl.province if alt < 0.5 else (rng.choice(pl.province_alts) if alt < 0.8
                                              and pl.province_alts else None)
    city = pl.city if alt < 0.5 else (rng.choice(pl.city_alts) if alt < 0.8
                                      and pl.city_alts else None)
    wechat_p = 0.95 if channel == "wechat" else 0.45
    return {
        "full_name": full_name, "company": company, "email": email, "phone": phone,
        "wechat_id": b.wechat if rng.random() < wechat_p else None,
        "country": b.country if rng.random() < 0.7 else None,
        "province": province, "city": city, "address": address,
        "postcode": pl.postcode if rng.random() < 0.55 else None, "consent": consent,
    }, [t for t in tags if not t.endswith("_same")]


def _name_variant(rng: random.Random, b: Buyer) -> tuple[str, str]:
    name, r = b.name, rng.random()
    if r < 0.38:
        return b.reg_name, "name_same"
    if name.zh:
        if b.reg_name != name.zh and r < 0.6:
            return name.zh, "name_hanzi"
        if name.english and r < 0.7:
            fam = name.family
            return rng.choice((f"{fam} {name.english}", f"{fam.upper()} {name.english}")), \
                "name_order"
        if r < 0.86:
            return rng.choice(va.pinyin_forms(_pinyin_family(name), name.syllables))
        if r < 0.93:
            typo = va.hanzi_typo(name.family_zh or "", list(name.given_zh), rng)
            if typo:
                return typo, "name_typo"
            return va.typo(rng, f"{_pinyin_family(name)} {name.given}"), "name_typo"
        return f"{name.family_zh} {''.join(c for c, _, _ in name.given_zh)}", "name_spaced"
    if r < 0.85:
        return rng.choice(va.latin_forms(rng, name.given, name.family,
                                         name.country in lx.FAMILY_FIRST))
    return va.typo(rng, name.latin), "name_typo"


def _pinyin_family(name: Name) -> str:
    if name.country == "HK":
        return next(s[1] for s in lx.SURNAMES if s[0] == name.family_zh)
    return name.family


def _company_variant(rng: random.Random, b: Buyer) -> tuple[str | None, str]:
    co, r = b.company, rng.random()
    if r < 0.28:
        return b.reg_company, "company_same"
    if r < 0.43:
        return None, "company_absent"
    if co.zh_core and r < 0.6:
        if b.reg_company == co.zh:
            alt = rng.choice(lx.ZH_SUFFIX_VARIANTS[co.zh_suffix])
            return va.join_company(co.zh_core, alt, True), "company_suffix"
        return co.zh, "company_hanzi"
    if r < 0.78:
        core = co.en_core
        if co.city_en and rng.random() < 0.3:
            core = core.removeprefix(co.city_en + " ")
        return va.join_company(core, va.en_suffix_variant(rng, co.en_suffix), False), \
            "company_suffix" if b.reg_company != co.zh else "company_english"
    if r < 0.88:
        return co.en.upper(), "company_case"
    return va.typo(rng, co.en), "company_typo"
