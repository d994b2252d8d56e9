"""Field comparisons for the probabilistic path: how far apart two records are, per field.

``compare(a, b)`` returns one comparison level per field of :data:`FIELDS`: 0 is full
agreement, higher levels agree less, :data:`MISSING` means the field cannot be compared
(absent on either side, or written in two scripts). The levels are what Fellegi-Sunter
weighs (``streams.identity.fellegi_sunter``); the cut points below only sort a similarity
into bands, the evidence each band carries is estimated from the data.

Metrics suit the field's errors:
- names: Jaro-Winkler on each name part, parts aligned in the better of both orders
  (``Max Varano``/``Varano Max``), so a swapped, typo'd or dropped part is one band
  lower, not a disagreement; hanzi compare as their pinyin;
- postcode, phone: optimal string alignment distance (a transposed pair of digits is
  one edit, as a mistyped one);
- address: its numbers as a set (a transposed digit is one edit away) and its words by
  token-set similarity with spaces ignored (``auroraclose``/``aurora close``);
- city, province: exact or Jaro-Winkler after pinyin folding (``杭州市``/``Hangzhou``);
- company: similarity of the normalised name within one script.

E-mail is not weighed: a pair on this path shares no mailbox by construction (one that
did was joined by the rules), and one person's second mailbox is common (a work and a
personal one), so what a differing mailbox says is only "another mailbox at the same
domain", which is a rule (``streams.identity.resolver._identifier_apart``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.fuzz import ratio, token_set_ratio

if TYPE_CHECKING:
    from streams.identity.resolver import Features

MISSING = -1
# Cheap fields first: a candidate they already rule out skips the string metrics.
FIELDS = ("postcode", "city", "province", "address_numbers", "phone",
          "name_best", "name_other", "street", "company")
LEVELS = (3, 3, 2, 3, 3, 5, 5, 3, 4)  # number of levels per field (MISSING apart)
CHEAP = 5  # FIELDS[:CHEAP] come from cheap_levels, the rest from costly_levels
# A pair is weighed only when at least one name part is close (Jaro-Winkler >= 0.85):
# colleagues share a firm, an address and a postcode, and without this gate they are the
# strongest structure among candidates, which EM would take for the matches.
NAME_GATE = 2

# Similarity bands. Jaro-Winkler >= 0.94 is one slip in a name of six letters or more,
# >= 0.85 two slips or a short name's one; the token-set bands likewise.
_NAME_CLOSE, _NAME_NEAR = 0.94, 0.85
_TEXT_CLOSE, _TEXT_NEAR = 95.0, 80.0
_COMPANY_CLOSE, _COMPANY_NEAR = 90.0, 70.0


def name_levels(a: tuple[str, ...], b: tuple[str, ...], same_form: bool) -> tuple[int, int]:
    """Levels of the best- and the worse-agreeing name part, parts aligned either way."""
    if not a or not b:
        return MISSING, MISSING
    if same_form:
        return 0, 0
    if len(a) > len(b):
        a, b = b, a
    if len(a) == 1:
        return _part_level(a[0], b), MISSING
    first, second = a[0], a[-1]
    straight = (_pair_level(first, b[0]), _pair_level(second, b[-1]))
    swapped = (_pair_level(first, b[-1]), _pair_level(second, b[0]))
    best = min(straight, swapped, key=sum)
    return min(best), max(best)


def _part_level(token: str, others: tuple[str, ...]) -> int:
    return min(_pair_level(token, o) for o in others)


def _pair_level(x: str, y: str) -> int:
    if x == y:
        return 0
    if len(x) == 1 or len(y) == 1:  # an initial
        return 3 if x[0] == y[0] else 4
    similarity = JaroWinkler.similarity(x, y)
    return 1 if similarity >= _NAME_CLOSE else 2 if similarity >= _NAME_NEAR else 4








def numbers_level(a: frozenset[str], b: frozenset[str]) -> int:
    """0 the same numbers; 1 one set within the other, or one number a slip of the
    other's; 2 nothing in common."""
    if not a or not b:
        return MISSING
    if a == b:
        return 0
    if a <= b or b <= a:
        return 1
    for x in a:
        for y in b:
            if OSA.distance(x, y, score_cutoff=1) <= 1:
                return 1
    return 2


def text_level(a: str | None, b: str | None) -> int:
    """Words of an address: token-set similarity, or the text with spaces dropped."""
    if not a or not b:
        return MISSING
    if a == b:
        return 0
    similarity = max(token_set_ratio(a, b), ratio(a.replace(" ", ""), b.replace(" ", "")))
    return 0 if similarity >= _TEXT_CLOSE else 1 if similarity >= _TEXT_NEAR else 2


def company_level(a: str | None, b: str | None, same_script: bool) -> int:
    if not a or not b or not same_script:
        return MISSING
    if a == b:
        return 0
    similarity = ratio(a, b)
    if similarity >= _COMPANY_CLOSE:
        return 1
    return 2 if similarity >= _COMPANY_NEAR else 3


def compare(a: Features, b: Features) -> tuple[int, ...]:
    """The comparison levels of two records, one per field of :data:`FIELDS`."""
    return cheap_levels(a, b) + costly_levels(a, b, names(a, b))


def names(a: Features, b: Features) -> tuple[int, int]:
    """The two name levels of a pair (:func:`name_levels` on the records)."""
    return name_levels(a.tokens, b.tokens, bool(a.names & b.names))


def cheap_levels(a: Features, b: Features) -> tuple[int, ...]:
    """Levels of the fields compared by equality, sets and short edit distances (inlined:
    every candidate pair goes through here)."""
    x, y = a.postcode, b.postcode
    postcode = MISSING if not x or not y else 0 if x == y else (
        1 if OSA.distance(x, y, score_cutoff=1) <= 1 else 2)
    x, y = a.city_key, b.city_key
    city = MISSING if not x or not y else 0 if x == y else (
        1 if JaroWinkler.similarity(x, y) >= 0.9 else 2)
    x, y = a.province, b.province
    province = MISSING if not x or not y else 0 if x == y else 1
    n, m = a.address_numbers, b.address_numbers
    numbers = MISSING if not n or not m else 0 if n == m else numbers_level(n, m)
    x, y = a.phone, b.phone
    phone = MISSING if not x or not y else 0 if x == y else (
        1 if OSA.distance(x, y, score_cutoff=1) <= 1 else 2)
    return postcode, city, province, numbers, phone


def costly_levels(a: Features, b: Features, name: tuple[int, int]) -> tuple[int, ...]:
    """Levels of the fields compared by string similarity: ``name`` (from :func:`names`),
    street, company."""
    return (
        *name,
        text_level(a.street, b.street) if a.street_hanzi == b.street_hanzi else MISSING,
        company_level(a.company, b.company, a.company_hanzi == b.company_hanzi),
    )
