"""Buyer identities: who a simulated buyer really is, and how they write it down each time.

``BuyerFactory.create`` draws a person (name, company, place, mailboxes, phone, WeChat id)
and how they write themselves at the registration kiosk; ``producers.simulator.contacts`` renders
their fields for each registration and inquiry.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

from producers.simulator import lexicon as lx
from producers.simulator import variants as va
from producers.simulator.params import SimulationParams


@dataclass(frozen=True)
class Name:
    country: str
    family: str  # Latin script
    given: str  # Latin script, as the person writes it
    syllables: tuple[str, ...] = ()  # pinyin syllables of a Chinese given name
    family_zh: str | None = None
    given_zh: tuple[tuple[str, str, str], ...] = ()  # (char, pinyin, homophones)
    english: str | None = None  # Hong Kong English given name

    @property
    def zh(self) -> str | None:
        if not self.family_zh:
            return None
        return self.family_zh + "".join(c for c, _, _ in self.given_zh)

    @property
    def latin(self) -> str:
        if self.english:
            return f"{self.english} {self.family}"
        if self.country in lx.FAMILY_FIRST:
            return f"{self.family} {self.given}"
        return f"{self.given} {self.family}"


@dataclass(frozen=True)
class Company:
    en_core: str
    en_suffix: str
    zh_core: str | None
    zh_suffix: str
    domain: str
    city_en: str = ""  # Chinese companies carry their city as a name prefix

    @property
    def zh(self) -> str | None:
        return va.join_company(self.zh_core, self.zh_suffix, True) if self.zh_core else None

    @property
    def en(self) -> str:
        return va.join_company(self.en_core, self.en_suffix, False)


@dataclass(frozen=True)
class Place:
    country: str
    province: str | None
    province_alts: tuple[str, ...]
    city: str
    city_alts: tuple[str, ...]
    postcode: str | None
    line: str  # the address as registered
    forms: tuple[tuple[str, str], ...]  # (tag, other rendering of the same address)


@dataclass
class Buyer:
    """The ground-truth person behind badges, registrations and inquiries."""

    id: str
    country: str
    name: Name
    company: Company
    place: Place
    email: str
    other_email: str
    phone: tuple[str, str, tuple[int, ...], str]  # cc, national number, groups, trunk
    phone_style: str
    wechat: str | None
    buyer_type: str
    currency: str
    language: str
    reg_name: str
    reg_company: str
    badge_id: str | None = None
    favourites: tuple[str, ...] = field(default=())

    def phone_as(self, style: str) -> str:
        cc, nsn, groups, trunk = self.phone
        return va.format_phone(cc, nsn, groups, trunk, style)


def _digits(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randrange(10)) if c == "#" else c for c in pattern)


class BuyerFactory:
    """Draws buyers one at a time; keeps them so that later ones can share names/companies."""

    def __init__(self, rng: random.Random, params: SimulationParams, fair_id: str) -> None:
        self.rng, self.p = rng, params
        self.buyers: list[Buyer] = []
        self._countries = [c for c, _ in params.countries]
        self._country_cum = list(accumulate(w for _, w in params.countries))
        self._surname_cum = list(accumulate(1 / (i + 1) ** 0.7 for i in range(len(lx.SURNAMES))))
        self._type_cum = list(accumulate(lx.BUYER_TYPE_WEIGHTS))
        self._city_cum = list(accumulate(lx.CN_CITY_WEIGHTS))
        self._mail_cum = list(accumulate(lx.CN_MAIL_WEIGHTS))
        parts = fair_id.split("-")
        self._badge_prefix = (
            f"{parts[0]}{parts[1][-2:]}{parts[2]}" if len(parts) == 3 else fair_id
        )
        self._badge_no = rng.randrange(100_000, 300_000)
        # A mailbox, a phone number or a WeChat id belongs to one person: two buyers
        # who draw the same one get a fresh draw (namesakes at one firm otherwise
        # collide on ``wei.wang@firm.cn``, which no real pair of people share).
        self._taken: set[str] = set()
        # Mistyped identifiers on some records (``claim``): no buyer may have one of them.
        self._typos: set[str] = set()

    def claim(self, value: str) -> bool:
        """Reserve a mistyped mailbox, phone number (national digits) or WeChat id; False
        when a buyer (or an earlier typo) has it already. A buyer drawn later never gets it:
        in the rare case one draws it, they draw again from a generator of its own (so the
        simulation's generator, and the day's events, stay as they were)."""
        key = _mailbox_key(value)
        if key in self._taken or key in self._typos:
            return False
        self._typos.add(key)
        return True

    def new_badge(self) -> str:
        self._badge_no += self.rng.randint(1, 13)
        return f"{self._badge_prefix}-{self._badge_no:07d}"

    # -- drawing a person ------------------------------------------------------------------

    def create(self) -> Buyer:
        rng, n = self.rng, len(self.buyers)
        country = "CN" if n < 2 else rng.choices(self._countries, cum_weights=self._country_cum)[0]
        model: Buyer | None = None
        if n == 1 or (n > 1 and rng.random() < self.p.namesake_rate):
            # namesakes: the second buyer always shares the first one's name (both CN)
            model = self.buyers[0] if n == 1 else rng.choice(self.buyers)
            country, name = model.country, model.name
        else:
            name = self._name(country, common=n == 0)
        if n > 1 and rng.random() < self.p.colleague_rate:
            peer = rng.choice(self.buyers)
            country, company, place = peer.country, peer.company, peer.place
            if name.country != country:
                name, model = self._name(country, common=False), None
        else:
            place = self._place(country)
            company = self._company(country, place)
        buyer = self._assemble(f"buyer-{n + 1:06d}", country, name, company, place)
        if model is not None:  # a namesake writes the name the same way
            buyer.reg_name = model.reg_name
        self.buyers.append(buyer)
        return buyer

    def _assemble(self, bid: str, country: str, name: Name, company: Company,
                  place: Place) -> Buyer:
        rng = self.rng
        personal = self._unique(lambda: self._personal_email(name, country))
        work = self._unique(lambda: self._work_email(name, company))
        email, other = (work, personal) if rng.random() < 0.4 else (personal, work)
        cc, patterns, groups, trunk = lx.PHONES[country]
        phone = (cc, self._unique(lambda: _digits(self.rng, self.rng.choice(patterns))),
                 groups, trunk)
        if country == "CN":
            style = rng.choices(va.PHONE_STYLES, (15, 18, 4, 4, 2, 2, 40, 8, 7))[0]
        else:
            style = rng.choices(va.PHONE_STYLES, (20, 40, 10, 5, 5, 5, 10, 3, 2))[0]
        wechat_p = {"CN": 0.88, "HK": 0.45}.get(country, 0.1)
        wechat = self._unique(lambda: self._wechat(name)) if rng.random() < wechat_p else None
        zh = name.zh is not None and (country == "CN" and rng.random() < 0.88
                                      or country == "HK" and rng.random() < 0.35)
        reg_name = name.zh if zh and name.zh else name.latin
        zh_company = company.zh is not None and rng.random() < (0.85 if country == "CN" else 0.3)
        reg_company = company.zh if zh_company and company.zh else company.en
        return Buyer(
            id=bid, country=country, name=name, company=company, place=place, email=email,
            other_email=other,
            phone=phone, phone_style=style, wechat=wechat,
            buyer_type=rng.choices(lx.BUYER_TYPES, cum_weights=self._type_cum)[0],
            currency=lx.CURRENCY_BY_COUNTRY[country],
            language="zh" if country in ("CN", "HK") and rng.random() < 0.9 else "en",
            reg_name=reg_name, reg_company=reg_company,
        )

    def _unique(self, draw: Callable[[], str]) -> str:
        value = self._fresh(draw)
        if self._typos and _mailbox_key(value) in self._typos:
            # Someone's record carries this as a typo: draw again, but not from the
            # simulation's generator (its next draws would shift every later event).
            main, self.rng = self.rng, random.Random(f"typo-clash:{value}")
            try:
                while _mailbox_key(value) in self._typos:
                    value = self._fresh(draw)
            finally:
                self.rng = main
        self._taken.add(_mailbox_key(value))
        return value

    def _fresh(self, draw: Callable[[], str]) -> str:
        """A draw that no buyer has yet (up to 50 tries, then made unique by a suffix)."""
        for _ in range(50):
            value = draw()
            if _mailbox_key(value) not in self._taken:
                return value
        return f"{value}{len(self._taken)}"  # pragma: no cover - not at fair scale

    def _name(self, country: str, common: bool) -> Name:
        rng = self.rng
        if country in ("CN", "HK"):
            if common or (country == "CN" and rng.random() < self.p.common_name_rate):
                fam_zh, giv_zh = rng.choice(lx.COMMON_NAMES)
                sur = next(s for s in lx.SURNAMES if s[0] == fam_zh)
                chars = tuple(next(g for g in lx.GIVEN_CHARS if g[0] == c) for c in giv_zh)
            else:
                sur = rng.choices(lx.SURNAMES, cum_weights=self._surname_cum)[0]
                k = 1 if rng.random() < 0.35 else 2
                chars = tuple(rng.choice(lx.GIVEN_CHARS) for _ in range(k))
            syllables = tuple(p for _, p, _ in chars)
            given = "".join(syllables).capitalize()
            if country == "HK":
                return Name(country, sur[2], given, syllables, sur[0], chars,
                            rng.choice(lx.HK_ENGLISH_NAMES))
            return Name(country, sur[1], given, syllables, sur[0], chars)
        givens, families = lx.FOREIGN_NAMES[country]
        return Name(country, rng.choice(families), rng.choice(givens))

    def _place(self, country: str) -> Place:
        rng = self.rng
        if country == "CN":
            return _cn_place(rng, rng.choices(lx.CN_CITIES, cum_weights=self._city_cum)[0])
        spec = lx.FOREIGN_PLACES[country]
        provinces, cities = spec["province"], spec["city"]
        assert isinstance(provinces, tuple) and isinstance(cities, tuple)
        street = rng.choice(spec["streets"])  # type: ignore[arg-type]
        number = rng.randint(1, 420)
        if country == "HK":
            line = f"Flat {rng.randint(2, 30)}{rng.choice('ABCDEF')}, {number} {street}"
        elif country in ("IT", "DE"):
            line = f"{street} {number}"
        elif country == "JP":
            line = f"{rng.randint(1, 6)}-{rng.randint(1, 30)}-{rng.randint(1, 20)} {street}"
        elif country == "US":
            line = f"{number} {street}, Suite {rng.randint(2, 40)}00"
        else:
            line = f"{number} {street}"
        pattern = spec["postcode"]
        postcode = _digits(rng, pattern) if isinstance(pattern, str) else None
        forms = (("address_abbrev", va.abbreviate_street(rng, line)),
                 ("address_typo", va.typo(rng, line)),
                 ("address_case", line.upper()))
        return Place(country, provinces[0], provinces[1:], cities[0], cities[1:], postcode,
                     line, forms)

    def _company(self, country: str, place: Place) -> Company:
        rng = self.rng
        if country == "CN":
            brand_zh, brand_py = rng.choice(lx.BRAND_WORDS)
            kind_zh, kind_en = rng.choice(lx.BUSINESS_KINDS)
            city_zh = place.city.removesuffix("市")
            city_en = place.city_alts[-1]
            zh_suffix = rng.choice(lx.ZH_SUFFIXES)
            tld = rng.choice((".com", ".cn", ".com.cn"))
            domain = f"{brand_py.lower()}{rng.choice(('', '-', ''))}{kind_en.split()[0].lower()}"
            return Company(f"{city_en} {brand_py} {kind_en}", "Co., Ltd.",
                           f"{city_zh}{brand_zh}{kind_zh}", zh_suffix,
                           va.fold_accents(domain) + tld, city_en)
        cores, suffixes = lx.FOREIGN_COMPANIES[country]
        i = rng.randrange(len(cores))
        core = cores[i]
        tld = {"HK": ".com.hk", "KR": ".co.kr", "JP": ".co.jp", "IT": ".it", "US": ".com",
               "GB": ".co.uk", "DE": ".de", "FR": ".fr"}[country]
        domain = va.fold_accents(core.lower()).replace(" ", rng.choice(("", "-"))) + tld
        zh_core = lx.HK_COMPANIES_ZH[i] if country == "HK" else None
        return Company(core, rng.choice(suffixes), zh_core, "有限公司", domain)

    def _personal_email(self, name: Name, country: str) -> str:
        rng = self.rng
        fam = va.fold_accents(va.german_fold(name.family)).lower().replace("-", "")
        giv = va.fold_accents(va.german_fold(name.english or name.given)).lower().replace("-", "")
        if country == "CN":
            domain = rng.choices(lx.CN_MAIL, cum_weights=self._mail_cum)[0]
            if domain == "qq.com" and rng.random() < 0.6:
                return f"{rng.randint(10_000_000, 3_999_999_999)}@qq.com"
        else:
            domain = rng.choice(lx.FOREIGN_MAIL[country])
        year = rng.randint(70, 99) if rng.random() < 0.5 else rng.randint(1975, 2004)
        local = rng.choice((f"{giv}.{fam}", f"{fam}{giv}", f"{fam}.{giv}", f"{giv}{fam}{year}",
                            f"{giv[0]}{fam}{year}", f"{fam}_{giv}"))
        return f"{local}@{domain}"

    def _work_email(self, name: Name, company: Company) -> str:
        fam = va.fold_accents(va.german_fold(name.family)).lower().replace("-", "")
        giv = va.fold_accents(va.german_fold(name.english or name.given)).lower().replace("-", "")
        local = self.rng.choice((f"{giv}.{fam}", f"{giv[0]}{fam}", f"{fam}{giv}", giv))
        return f"{local}@{company.domain}"

    def _wechat(self, name: Name) -> str:
        rng = self.rng
        if rng.random() < 0.4:
            alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
            return "wxid_" + "".join(rng.choice(alphabet) for _ in range(14))
        fam = va.fold_accents(name.family).lower().replace("-", "")
        giv = va.fold_accents(name.english or name.given).lower().replace("-", "")
        stem = rng.choice((fam + giv, giv + "_" + fam, fam + "_" + giv[:1]))
        return f"{stem}{rng.randint(1, 9999)}"


def _mailbox_key(value: str) -> str:
    """What makes two identifiers one: Gmail ignores dots in the local part."""
    local, at, domain = value.lower().rpartition("@")
    if at and domain in ("gmail.com", "googlemail.com"):
        return local.replace(".", "") + "@gmail.com"
    return value.lower()


def _cn_place(rng: random.Random, city: tuple) -> Place:
    prov_zh, prov_en, city_zh, city_en, postcode, districts = city
    dist_zh, dist_en = rng.choice(districts)
    road_zh, road_py = rng.choice(lx.ROADS)
    kind_zh, kind_en, kind_ab = rng.choice(lx.ROAD_KINDS)
    number = rng.randint(1, 888)
    unit = rng.random()
    bld, room, floor = rng.randint(1, 12), rng.randint(1, 28) * 100 + rng.randint(1, 12), \
        rng.randint(2, 40)
    tower_zh, tower_en = rng.choice(lx.TOWERS)
    head = f"{dist_zh}{road_zh}{kind_zh}{number}号"
    if unit < 0.5:
        tail_zh, tail_ab, tail_en = f"{bld}幢{room}室", f"{bld}-{room}", f"Room {room}, Bldg {bld}"
    elif unit < 0.8:
        tail_zh, tail_ab = f"{tower_zh}大厦{floor}楼", f"{tower_zh}大厦{floor}F"
        tail_en = f"{floor}F, {tower_en} Plaza"
    else:
        tail_zh = tail_ab = tail_en = ""
    line = head + tail_zh
    municipality = prov_zh == city_zh
    with_city = ("" if municipality else prov_zh) + city_zh + line
    road_typo = "".join(lx.ROAD_TYPOS.get(c, c) for c in road_zh[:1]) + road_zh[1:]
    if road_typo == road_zh:
        road_typo = road_zh + road_zh[-1:]
    typo_line = f"{dist_zh}{road_typo}{kind_zh}{number}号{tail_zh}"
    kind = kind_ab if rng.random() < 0.5 else kind_en
    en = f"No. {number} {road_py} {kind}, {dist_en} {rng.choice(('District', 'Dist.'))}"
    en_line = f"{tail_en}, {en}" if tail_en else en
    forms = (
        ("address_abbrev", f"{road_zh}{kind_zh}{number}号{tail_ab}"),
        ("address_with_city", with_city),
        ("address_english", f"{en_line}, {city_en}"),
        ("address_typo", typo_line),
    )
    post = postcode + f"{rng.randint(0, 9)}{rng.randint(0, 9)}"
    prov_alts = (prov_zh.removesuffix("省").removesuffix("市"), prov_en)
    city_alts = (city_zh.removesuffix("市"), city_en)
    return Place("CN", prov_zh, prov_alts, city_zh, city_alts, post, line, forms)
