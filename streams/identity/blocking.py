"""Blocking keys that still meet when a field is mistyped: candidates for the weighed path.

Identifier keys (badge, email, phone, WeChat id) find records that share one exactly; a
person who typed none of them, or typed one differently, needs keys that survive typos.
Each key combines two fields, so one mistyped field still leaves others to meet on:

- a name part's sound (Soundex: ``jacob``/``jacbo``, ``smith``/``smyth``) with the
  postcode or with the address's first telling word; both parts' sounds, in either
  order, with a number of the address;
- the postcode with an address number, and the postcode, the city or a name part's
  sound with the address's first letters (a name typed quite differently);
- the first four letters of the name parts, in order (a slip late in a short name that
  changes its sound).

A key is only ever read up to its newest :data:`BLOCK_READ` records, and a record is
compared with at most :data:`MAX_CANDIDATES` others, so the work per record is bounded
however common a name or a city is; the bench reports the candidates actually compared.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams.identity.resolver import Features

BLOCK_READ = 6
MAX_CANDIDATES = 24

_SOUNDEX = str.maketrans("bfpvcgjkqsxzdtlmnr", "111122222222334556")


@lru_cache(maxsize=131072)
def soundex(token: str) -> str:
    """American Soundex of a lower-case Latin token (``robert`` -> ``r163``)."""
    head, codes, last = token[0], [], _code(token[0])
    for c in token[1:]:
        code = _code(c)
        if code and code != last:
            codes.append(code)
        if c not in "hw":  # h and w do not separate two equal codes; vowels do
            last = code
    return (head + "".join(codes) + "000")[:4]


def _code(c: str) -> str:
    mapped = c.translate(_SOUNDEX)
    return mapped if mapped.isdigit() else ""


def typo_keys(f: Features) -> list[str]:
    """The record's typo-tolerant blocking keys (none without a name). Every record of
    the weighed path goes through here once: written for speed, keys are plain strings
    (``kind|value|value``; a string is one object the collector never tracks)."""
    parts = [t for t in f.tokens if len(t) > 1]
    if not parts:
        return []
    sounds = sorted({soundex(t) for t in parts})
    pair = f"{sounds[0]}|{sounds[-1]}"
    place = f.city_key or f.province or ""
    keys = ["q|" + "".join(t[:4] for t in sorted(parts)) + "|" + place]
    # the address's two most telling numbers, the longest: house, room (a building or
    # floor number of one digit is shared by half a district)
    numbers = list(f.address_numbers)
    if len(numbers) > 2:
        numbers = sorted(numbers, key=_longest_first)[:2]
    for n in numbers:
        keys.append(f"sn|{pair}|{n}")
    postcode = f.postcode
    if postcode:
        for sound in sounds:
            keys.append(f"sp|{sound}|{postcode}")
        for n in numbers:
            keys.append(f"pn|{postcode}|{n}")
    if f.street and not f.street_hanzi:
        word = _telling_word(f.street)
        if word:
            for sound in sounds:
                keys.append(f"sw|{sound}|{word}")
            if postcode:
                keys.append(f"ps|{postcode}|{word}")
    return keys


def _longest_first(number: str) -> tuple[int, str]:
    return -len(number), number


# Words every other address carries: a key on them would block half a city together.
_GENERIC_WORDS = frozenset((
    "street", "road", "avenue", "drive", "place", "crescent", "court", "close", "lane",
    "terrace", "parade", "highway", "circuit", "square", "village", "estate", "park",
    "gardens", "garden", "room", "floor", "building", "bldg", "tower", "plaza", "district",
    "dist", "suite", "unit", "flat", "block", "north", "south", "east", "west", "centre",
    "center", "strasse", "straße", "via", "rue", "chome",
))


def _telling_word(street: str) -> str | None:
    """The first letters of the address's first word that is not a generic one (the
    street's name, usually: a dropped or added locality comes after it)."""
    for word in street.split():
        if len(word) > 2 and word not in _GENERIC_WORDS:
            return word[:5]
    return None
