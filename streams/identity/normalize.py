"""Normalisers for buyer contact fields. Pure; each returns None for nothing usable.

- email: lower case; provider rules only where the provider really ignores them
  (Gmail ignores dots and ``+tags`` in the local part; Outlook/Hotmail/Live, iCloud,
  Proton and Fastmail deliver ``+tags`` to the base mailbox). Other providers keep
  dots and tags: ``a.b@163.com`` and ``ab@163.com`` are different mailboxes.
- phone: E.164 via libphonenumber, with the record's country as the default region
  (CN when absent), so ``0086 138-0013-8000``, ``+86 13800138000`` and ``13800138000``
  agree, and an Italian ``346 194 5108`` becomes ``+393461945108``.
- names: Chinese characters become pinyin (pypinyin); tokens are lower-case letters;
  the forms compared are the concatenations in both orders, so ``王秀英``,
  ``Wang Xiuying``, ``Xiuying Wang`` and ``WangXiuying`` share a form.
- company: lower case, legal suffixes (有限公司, Co., Ltd., GmbH, ...) and punctuation
  removed, Chinese place prefixes kept.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

import phonenumbers
from pypinyin import lazy_pinyin

_GMAIL = {"gmail.com", "googlemail.com"}
_PLUS_TAG_PROVIDERS = {
    "outlook.com", "hotmail.com", "live.com", "msn.com", "icloud.com", "me.com",
    "protonmail.com", "proton.me", "fastmail.com",
} | _GMAIL
_HANZI = re.compile(r"[\u4e00-\u9fff]")
_DIGIT = re.compile(r"\d")
_CN_MOBILE = re.compile(r"(?:\+86|0086)?(1[3-9]\d{9})")
_LATIN_TOKEN = re.compile(r"[a-z]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_COMPANY_SUFFIXES = (
    "股份有限公司", "有限责任公司", "有限公司", "集团", "公司",
    "co., ltd.", "co.,ltd.", "co. ltd.", "co ltd", "company limited", "limited", "ltd.",
    "ltd", "inc.", "inc", "gmbh", "s.r.l.", "srl", "s.p.a.", "spa", "llc", "l.l.c.",
    "corp.", "corporation", "corp", "co.", "sarl", "s.a.", "b.v.", "pty",
)
_PUNCT = re.compile(r"[\s\.,\-_'’&()（）/]+")
_SUFFIX_AT_END = re.compile(
    "(?:" + "|".join(re.escape(x) for x in sorted(_COMPANY_SUFFIXES, key=len, reverse=True))
    + r")[\s,.]*$"
)


@lru_cache(maxsize=65536)
def email(value: str | None) -> str | None:
    if not value or "@" not in value:
        return None
    local, _, domain = value.strip().lower().rpartition("@")
    if not local or "." not in domain:
        return None
    if domain in _PLUS_TAG_PROVIDERS:
        local = local.split("+", 1)[0]
    if domain in _GMAIL:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


def loose_email(value: str | None, strict: str | None = None) -> str | None:
    """The mailbox with ``+tags`` and ``. _ -`` dropped, for any provider: weak evidence,
    used only together with a matching name (people mistype, and mailers add tags).
    ``strict`` is ``email(value)`` when the caller has it already."""
    strict = strict or email(value)
    if strict is None:
        return None
    local, _, domain = strict.rpartition("@")
    local = re.sub(r"[._\-]", "", local.split("+", 1)[0])
    return f"{local}@{domain}" if local else None


@lru_cache(maxsize=65536)
def phone(value: str | None, country: str | None = None) -> str | None:
    if not value or not _DIGIT.search(value):
        return None
    compact = re.sub(r"[\s\-().]", "", value)
    mobile = _CN_MOBILE.fullmatch(compact)
    if mobile and (country in (None, "", "CN") or compact.startswith(("+86", "0086"))):
        return "+86" + mobile.group(1)  # most buyers: a mainland mobile, no parsing needed
    if compact.startswith("00"):
        # "00" is the international prefix of China and most of Europe and Asia; buyers
        # type it whatever their own region dials (HK 001, JP 010, US 011).
        value = "+" + compact[2:]
    try:
        number = phonenumbers.parse(value, (country or "CN").upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_region_known(value: str | None, country: str | None) -> bool:
    """Whether ``phone(value, country)`` knew the number's country: dialled with ``+`` or
    ``00``, typed beside a country, or a mainland mobile (11 digits, ``1[3-9]``)."""
    if not value:
        return False
    if country:
        return True
    compact = re.sub(r"[\s\-().]", "", value)
    return compact.startswith(("+", "00")) or bool(_CN_MOBILE.fullmatch(compact))


@lru_cache(maxsize=65536)
def wechat(value: str | None) -> str | None:
    cleaned = value.strip().lower() if value else ""
    return cleaned or None


@lru_cache(maxsize=65536)
def name_tokens(value: str | None) -> tuple[str, ...]:
    """Lower-case latin tokens of a name; hanzi become (family, given) in pinyin."""
    if not value:
        return ()
    text = unicodedata.normalize("NFKC", value).strip()
    if _HANZI.search(text):
        syllables = [s for s in map(_char_pinyin, text) if s and _LATIN_TOKEN.fullmatch(s)]
        first = text.lstrip()[:1]
        if syllables and first in _SURNAME_READING:
            syllables[0] = _SURNAME_READING[first]
        if not syllables:
            return ()
        return (syllables[0], "".join(syllables[1:])) if len(syllables) > 1 else (syllables[0],)
    text = _CAMEL.sub(" ", text)
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return tuple(_LATIN_TOKEN.findall(folded))


# Cantonese and other common romanisations of surnames, to their pinyin: ``Karen Lee``
# and ``李君`` can be one Hong Kong buyer.
SURNAME_PINYIN: dict[str, tuple[str, ...]] = {
    "lee": ("li",), "chan": ("chen",), "wong": ("huang", "wang"), "cheung": ("zhang",),
    "lau": ("liu",), "ho": ("he",), "ng": ("wu",), "leung": ("liang",), "tsang": ("zeng",),
    "chow": ("zhou",), "cheng": ("zheng",), "yip": ("ye",), "lam": ("lin",), "kwok": ("guo",),
    "tang": ("deng", "tang"), "lai": ("li", "lai"), "mak": ("mai",), "fung": ("feng",),
    "tse": ("xie",), "choi": ("cai",), "tong": ("tang",), "lo": ("lu", "luo"), "pak": ("bai",),
    "kam": ("jin",), "tam": ("tan",), "hung": ("xiong", "hong"), "ngai": ("wei",),
    "sung": ("song",), "yeung": ("yang",), "chu": ("zhu",), "siu": ("xiao",), "ma": ("ma",),
    "kwan": ("guan",), "law": ("luo",), "tsui": ("xu",), "hui": ("xu",), "yu": ("yu",),
    "chiu": ("zhao",), "lui": ("lv", "lei"), "poon": ("pan",), "mok": ("mo",), "to": ("du",),
    "au": ("ou",), "kong": ("jiang",), "yuen": ("yuan",), "fok": ("huo",), "shek": ("shi",),
    "wan": ("yun", "wen"), "tsoi": ("cai",), "liu": ("liao", "liu"), "chung": ("zhong",),
    "ko": ("gao",), "kan": ("jian",), "koo": ("gu",), "sze": ("shi",), "kwong": ("kuang",),
    "tin": ("tian",), "ching": ("cheng",), "yim": ("yan",), "suen": ("sun",), "hon": ("han",),
    "tso": ("cao",), "pang": ("peng",), "tung": ("dong",), "tseung": ("jiang",), "so": ("su",),
    "ting": ("ding",), "shum": ("shen",), "yam": ("ren",), "yiu": ("yao",), "luk": ("lu",),
    "fong": ("fang",), "chau": ("zhou", "zou"), "mang": ("meng",), "chun": ("qin",),
    "yau": ("qiu", "you"), "hau": ("hou",), "sit": ("xue",), "lung": ("long",), "ku": ("gu",),
    "mo": ("mao", "mo"), "kung": ("gong",), "shiu": ("shao",), "chin": ("qian",),
    "ha": ("xia",), "lyu": ("lv",), "lu": ("lu", "lv"),
}
# Surnames whose everyday reading differs from pypinyin's default for the character.
_SURNAME_READING = {"曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "朴": "piao",
                    "查": "zha", "区": "ou", "乐": "yue", "覃": "qin", "缪": "miao",
                    "盖": "ge", "尉": "yu", "种": "chong", "万": "wan", "沈": "shen"}


@lru_cache(maxsize=65536)
def surname_keys(value: str | None) -> frozenset[str]:
    """Pinyin of the possible family names: first and last token, and for a Latin-script
    name their pinyin readings too (``Cheng`` is 程 in pinyin, 郑 in Cantonese)."""
    tokens = name_tokens(value)
    if not tokens:
        return frozenset()
    keys: set[str] = {tokens[0], tokens[-1]}
    if has_hanzi(value):
        return frozenset(keys)  # already pinyin: 程 is ``cheng``, not Cantonese ``Cheng`` (郑)
    for token in (tokens[0], tokens[-1]):
        keys.update(SURNAME_PINYIN.get(token, ()))
    return frozenset(keys)


def has_hanzi(value: str | None) -> bool:
    return bool(value and _HANZI.search(value))


@cache
def _char_pinyin(char: str) -> str:
    """One character's pinyin (names are read character by character; surnames whose
    reading differs are fixed by ``_SURNAME_READING``)."""
    syllables = lazy_pinyin(char)
    return syllables[0] if len(syllables) == 1 and _HANZI.match(char) else ""


@lru_cache(maxsize=65536)
def name_forms(value: str | None) -> frozenset[str]:
    """Concatenations of the name's tokens, family-first and family-last."""
    tokens = name_tokens(value)
    if not tokens:
        return frozenset()
    return frozenset({"".join(tokens), "".join(reversed(tokens))})


@lru_cache(maxsize=65536)
def company(value: str | None) -> str | None:
    if not value:
        return None
    text = unicodedata.normalize("NFKC", value).strip().lower()
    while True:  # "... Co., Ltd." and "...集团有限公司" carry more than one suffix
        stripped = _SUFFIX_AT_END.sub("", text).rstrip(" ,.")
        if stripped == text or not stripped:
            break
        text = stripped
    text = _PUNCT.sub("", text)
    return text or None


_NUMBER = re.compile(r"\d+")


@lru_cache(maxsize=65536)
def address_numbers(value: str | None) -> frozenset[str]:
    """The numbers of an address (house, building, room, floor): they survive the
    abbreviations, translations and typos that change its words (``中山路245号9幢2804室``,
    ``中山路245号9-2804`` and ``Room 2804, Bldg 9, No. 245 Zhongshan Rd.`` agree)."""
    if not value:
        return frozenset()
    return frozenset(n.lstrip("0") or "0" for n in _NUMBER.findall(value))


@lru_cache(maxsize=65536)
def postcode(value: str | None) -> str | None:
    cleaned = re.sub(r"[\s\-]", "", value).upper() if value else ""
    return cleaned or None


_PLACE_SUFFIX = re.compile(r"(?:特别行政区|自治区|自治州|地区|省|市|区|县)$")
_PLACE_PUNCT = re.compile(r"[\s\.,\-_'’]+")


@lru_cache(maxsize=65536)
def place(value: str | None) -> str | None:
    """A city or province folded for comparison: lower case, no spaces or punctuation, an
    administrative suffix dropped, hanzi read as pinyin (``杭州市``, ``Hangzhou`` agree)."""
    if not value:
        return None
    text = unicodedata.normalize("NFKC", value).strip().lower()
    if _HANZI.search(text):
        text = _PLACE_SUFFIX.sub("", text) or text
        text = "".join(_char_pinyin(c) or c for c in text)
    text = _PLACE_PUNCT.sub("", text)
    return text or None


_ADDRESS_DROP = re.compile(r"[\d\W_]+")


@lru_cache(maxsize=65536)
def street(value: str | None) -> str | None:
    """The words of an address without its numbers and punctuation, lower case, single
    spaces (hanzi kept as they are): compared by similarity, numbers compared apart."""
    if not value:
        return None
    text = unicodedata.normalize("NFKC", value).lower()
    text = " ".join(_ADDRESS_DROP.sub(" ", text).split())
    return text or None
