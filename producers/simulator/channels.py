"""Where a buyer record was typed, and the errors each channel makes, field by field.

A record's ``channel`` (in the ground truth's ``buyer_records``; the event's
``source.channel`` is unchanged) is one of:

- ``online``: a registration on the web or in WeChat (``source.channel`` web/wechat):
  typed by the buyer, mostly autofilled;
- ``desk``: a registration at the on-site desk (``source.channel`` kiosk, badge reissues
  included): staff type the name and company by hand, in a hurry;
- ``card``: a desk registration keyed or OCR'd from the buyer's business card
  (``CARD_SHARE`` of desk registrations);
- ``inquiry``: an online inquiry form (on top of the inquiry's own drift in
  ``producers.simulator.contacts``: name forms, mailbox variants, phone formats...).

``CHANNEL_NOISE`` gives, per channel and field, the probability of each kind of error in a
record that has the field (at most one error per field; a kind that cannot happen to the
value, such as a keyboard typo in a hanzi name, leaves it unchanged and untagged). Each
error applied adds the tag ``<field>_<kind>`` to the record's ``variants`` (``full_name`` is
``name``, ``wechat_id`` is ``wechat``): ``name_keyboard_typo``, ``postcode_transposed``,
``company_abbrev``, ``address_missing``... Rates, in % of records having the field:

| field | kind | online | desk | card | inquiry |
|---|---|---|---|---|---|
| full_name | keyboard_typo | 1 | 3 | 1.5 | 2 |
| full_name | homophone (hanzi: IME pick) | - | 3 | - | - |
| full_name | ocr | - | - | 4 | - |
| full_name | part_dropped | - | 2 | 3 | - |
| full_name | swapped (Latin script) | - | 2 | 3 | - |
| company | keyboard_typo | 1 | 3 | 1.5 | 2 |
| company | ocr | - | - | 4 | - |
| company | abbrev | 2 | 5 | 8 | 4 |
| company | legal_suffix | 2 | 4 | 4 | - |
| company | missing | - | 3 | - | - |
| email | keyboard_typo | 0.2 | 0.6 | - | 0.4 |
| email | ocr | - | - | 0.8 | - |
| email | missing | - | 3 | - | - |
| phone | transposed | - | 0.3 | 0.4 | 0.3 |
| phone | digit (number-row neighbour) | 0.1 | 0.2 | - | - |
| phone | ocr (digit misread) | - | - | 0.3 | - |
| phone | missing | - | 2 | - | - |
| wechat_id | keyboard_typo | - | 0.4 | - | - |
| wechat_id | missing | - | 3 | 15 | - |
| address | keyboard_typo | 1 | 3 | - | 2 |
| address | ocr | - | - | 4 | - |
| address | digits (transposed or mistyped number) | 0.5 | 2 | 2 | 1 |
| address | missing | 3 | 8 | 5 | - |
| postcode | transposed | 0.5 | 2 | 3 | 2 |
| postcode | digit | - | 2 | - | 1 |
| postcode | ocr | - | - | 3 | - |
| postcode | missing | 3 | 8 | 5 | - |

Measured on a 300k-event day (seed 11): 39% of desk records and 42% of card records carry
an error (1.2 errors each on average), 12% of online registrations and 10% of inquiries
(one each): a noisy record has one or two errors, most fields stay as they were (the
FEBRL level). Strong identifiers are noised rarely and never into a value another
buyer has (``claim``: the buyer factory's register of taken mailboxes, phones and WeChat
ids); badge ids are never noised; a registration's name is never dropped.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from producers.simulator import typos as ty
from producers.simulator import variants as va
from producers.simulator.buyers import Buyer

ONLINE, DESK, CARD, INQUIRY = "online", "desk", "card", "inquiry"
CHANNELS = (ONLINE, DESK, CARD, INQUIRY)
CARD_SHARE = 0.2  # of desk registrations, keyed or OCR'd from a business card

Kinds = tuple[tuple[str, float], ...]
CHANNEL_NOISE: dict[str, dict[str, Kinds]] = {
    ONLINE: {
        "full_name": (("keyboard_typo", 0.01),),
        "company": (("keyboard_typo", 0.01), ("abbrev", 0.02), ("legal_suffix", 0.02)),
        "email": (("keyboard_typo", 0.002),),
        "phone": (("digit", 0.001),),
        "address": (("keyboard_typo", 0.01), ("digits", 0.005), ("missing", 0.03)),
        "postcode": (("transposed", 0.005), ("missing", 0.03)),
    },
    DESK: {
        "full_name": (("keyboard_typo", 0.03), ("homophone", 0.03), ("part_dropped", 0.02),
                      ("swapped", 0.02)),
        "company": (("keyboard_typo", 0.03), ("abbrev", 0.05), ("legal_suffix", 0.04),
                    ("missing", 0.03)),
        "email": (("keyboard_typo", 0.006), ("missing", 0.03)),
        "phone": (("transposed", 0.003), ("digit", 0.002), ("missing", 0.02)),
        "wechat_id": (("keyboard_typo", 0.004), ("missing", 0.03)),
        "address": (("keyboard_typo", 0.03), ("digits", 0.02), ("missing", 0.08)),
        "postcode": (("transposed", 0.02), ("digit", 0.02), ("missing", 0.08)),
    },
    CARD: {
        "full_name": (("ocr", 0.04), ("keyboard_typo", 0.015), ("part_dropped", 0.03),
                      ("swapped", 0.03)),
        "company": (("ocr", 0.04), ("keyboard_typo", 0.015), ("abbrev", 0.08),
                    ("legal_suffix", 0.04)),
        "email": (("ocr", 0.008),),
        "phone": (("transposed", 0.004), ("ocr", 0.003)),
        "wechat_id": (("missing", 0.15),),
        "address": (("ocr", 0.04), ("digits", 0.02), ("missing", 0.05)),
        "postcode": (("ocr", 0.03), ("transposed", 0.03), ("missing", 0.05)),
    },
    INQUIRY: {
        "full_name": (("keyboard_typo", 0.02),),
        "company": (("keyboard_typo", 0.02), ("abbrev", 0.04)),
        "email": (("keyboard_typo", 0.004),),
        "phone": (("transposed", 0.003),),
        "address": (("keyboard_typo", 0.02), ("digits", 0.01)),
        "postcode": (("transposed", 0.02), ("digit", 0.01)),
    },
}
FIELD_TAG = {"full_name": "name", "wechat_id": "wechat"}
STRONG = frozenset({"email", "phone", "wechat_id"})
_TRIES = 4  # typo draws for a strong identifier before leaving it as it was


def tag_of(field: str, kind: str) -> str:
    """The ``variants`` tag of an error: ``name_keyboard_typo``, ``postcode_ocr``..."""
    return f"{FIELD_TAG.get(field, field)}_{kind}"


def registration_channel(rng: random.Random | None, source_channel: str) -> str:
    """online for a web/WeChat registration; desk, or card for ``CARD_SHARE`` of them, at
    the kiosk (always desk without a noise generator: the realistic variants are off)."""
    if source_channel != "kiosk":
        return ONLINE
    return CARD if rng is not None and rng.random() < CARD_SHARE else DESK


def add_noise(rng: random.Random, contact: dict[str, object], b: Buyer, channel: str,
              claim: Callable[[str], bool]) -> list[str]:
    """Apply ``channel``'s errors to ``contact`` in place; return the tags of those applied.

    One draw per field present (a fixed number of draws for a given contact). ``claim(key)``
    reserves a strong identifier's key (``BuyerFactory.claim``) and is False when someone has
    it: such a typo is drawn again, up to ``_TRIES`` times, then left out.
    """
    tags: list[str] = []
    for field, kinds in CHANNEL_NOISE[channel].items():
        value = contact.get(field)
        if not isinstance(value, str) or not value:
            continue
        kind = _pick(rng.random(), kinds)
        if kind is None:
            continue
        if kind == "missing":
            contact[field] = None
            tags.append(tag_of(field, kind))
            continue
        new = value
        for _ in range(_TRIES if field in STRONG else 1):
            new = apply_error(rng, field, kind, value, b)
            if new == value or field not in STRONG or claim(_key(field, new, b)):
                break
            new = value
        if new != value:
            contact[field] = new
            tags.append(tag_of(field, kind))
    return tags


def _pick(u: float, kinds: Kinds) -> str | None:
    """The kind of error a uniform draw ``u`` falls on (None: no error, 1 - sum of rates)."""
    for kind, p in kinds:
        if u < p:
            return kind
        u -= p
    return None


def _key(field: str, value: str, b: Buyer) -> str:
    """The identifier ``BuyerFactory`` registers: a phone's national number, else the value."""
    if field == "phone":
        return "".join(c for c in value if c.isdigit())[-len(b.phone[1]):]
    return value


def apply_error(rng: random.Random, field: str, kind: str, value: str, b: Buyer) -> str:
    """``value`` of ``field`` with one error of ``kind`` (not ``missing``), or unchanged when
    that error cannot happen to it; no uniqueness check (``add_noise`` does that)."""
    if field == "email":
        local, at, domain = value.rpartition("@")
        if not at:
            return value
        return apply_error(rng, "local", kind, local, b) + "@" + domain
    if field == "phone":
        last = max(2, len(b.phone[1]) - 2)  # the subscriber part, not the mobile prefix
        fn = {"transposed": ty.transpose_digits, "digit": ty.mistype_digit,
              "ocr": ty.misread_digit}[kind]
        return fn(rng, value, last)
    if kind == "keyboard_typo":
        return ty.keyboard_typo(rng, value)
    if kind == "ocr":
        return ty.ocr_confusion(rng, value)
    if kind == "transposed":
        return ty.transpose_digits(rng, value)
    if kind == "digit":
        return ty.mistype_digit(rng, value)
    if kind == "digits":
        return (ty.transpose_digits if rng.random() < 0.5 else ty.mistype_digit)(rng, value)
    name, co = b.name, b.company
    if kind == "homophone":
        if value != name.zh:
            return value
        return va.hanzi_typo(name.family_zh or "", list(name.given_zh), rng) or value
    if kind == "part_dropped":
        given_zh = "".join(c for c, _, _ in name.given_zh)
        return ty.drop_name_part(rng, value, name.english or name.given, name.syllables,
                                 given_zh)
    if kind == "swapped":
        return ty.swap_name_parts(value)
    if kind == "abbrev":
        cities = (co.city_en, b.place.city.removesuffix("市")) if co.city_en else ()
        return ty.abbreviate_company(rng, value, cities)
    if kind == "legal_suffix":
        return ty.change_legal_suffix(rng, value)
    raise ValueError(f"unknown error kind {kind!r} for {field}")
