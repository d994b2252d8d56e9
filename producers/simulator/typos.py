"""Realistic typing and reading errors: the generators behind the channels' noise.

Every function is a pure function of the ``random.Random`` it is given and its text: the
same generator state and text give the same result. Each returns the changed text, or the
text unchanged when the error cannot happen to it (too short, no digit, nothing to
abbreviate...): callers tag a drift only when the text changed.

- ``keyboard_typo``: one slip on a QWERTY keyboard (a neighbouring key instead, an extra
  neighbouring key, a letter dropped, two letters swapped), never on the first letter;
- ``ocr_confusion``: one misread of a printed card (0/O, 1/l/I, 5/S, 8/B, 2/Z, 6/G, rn/m,
  cl/d, vv/w; hanzi lookalikes such as 王/玉);
- ``transpose_digits`` / ``mistype_digit`` / ``misread_digit``: two neighbouring digits
  swapped, one digit replaced by its neighbour on the number row, one digit misread as
  another digit (3/8, 1/7, 5/6, 0/8);
- ``drop_name_part``, ``swap_name_parts``: a given name reduced to an initial or a syllable,
  a hanzi given-name character dropped; the two name fields typed the other way round;
- ``abbreviate_company``, ``change_legal_suffix``: ``International`` -> ``Intl``,
  initialisms, a dropped city prefix; ``Co., Ltd.`` -> ``Ltd``, ``有限公司`` -> ``有限责任公司``.
"""

from __future__ import annotations

import random

from producers.simulator.lexicon import (
    COMPANY_ABBREVIATIONS,
    EN_SUFFIX_VARIANTS,
    HANZI_LOOKALIKES,
    ZH_SUFFIX_VARIANTS,
)

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_DIGIT_ROW = "1234567890"


def _neighbours() -> dict[str, str]:
    """Keys next to each letter on a QWERTY keyboard (same row and the rows above/below)."""
    out: dict[str, str] = {}
    for r, row in enumerate(_ROWS):
        for i, c in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            for other in (r - 1, r + 1):
                if 0 <= other < len(_ROWS):
                    near += [_ROWS[other][j] for j in (i - 1, i, i + 1)
                             if 0 <= j < len(_ROWS[other])]
            out[c] = "".join(near)
    for i, c in enumerate(_DIGIT_ROW):
        out[c] = "".join(_DIGIT_ROW[j] for j in (i - 1, i + 1) if 0 <= j < len(_DIGIT_ROW))
    return out


QWERTY_NEIGHBOURS = _neighbours()
# Printed characters an OCR engine (or a tired eye) reads as another; both directions.
OCR_PAIRS: tuple[tuple[str, str], ...] = (
    ("0", "O"), ("O", "0"), ("o", "0"), ("1", "l"), ("l", "1"), ("I", "l"), ("l", "I"),
    ("1", "I"), ("5", "S"), ("S", "5"), ("8", "B"), ("B", "8"), ("2", "Z"), ("6", "G"),
    ("rn", "m"), ("m", "rn"), ("cl", "d"), ("d", "cl"), ("vv", "w"), ("w", "vv"),
    ("e", "c"), ("h", "b"),
)
DIGIT_MISREADS = {"3": "8", "8": "3", "1": "7", "7": "1", "5": "6", "6": "5", "0": "8",
                  "9": "4", "4": "9", "2": "7"}


def _keep_case(model: str, c: str) -> str:
    return c.upper() if model.isupper() else c


def keyboard_typo(rng: random.Random, text: str) -> str:
    """One QWERTY slip in ``text`` (ASCII letters and digits only; the first one kept)."""
    keys = [i for i, c in enumerate(text) if c.isascii() and c.isalnum()]
    if len(keys) < 4:
        return text
    i = rng.choice(keys[1:])
    c = text[i]
    kind = rng.random()
    near = QWERTY_NEIGHBOURS.get(c.lower(), "")
    if kind < 0.35 and near:  # a neighbouring key instead
        return text[:i] + _keep_case(c, rng.choice(near)) + text[i + 1:]
    if kind < 0.55 and near:  # a neighbouring key as well
        return text[:i] + _keep_case(c, rng.choice(near)) + text[i:]
    if kind < 0.8 or i + 1 >= len(text) or not text[i + 1].isalnum() or text[i + 1] == c:
        return text[:i] + text[i + 1:]  # a letter dropped
    return text[:i] + text[i + 1] + c + text[i + 2:]  # two letters swapped


def ocr_confusion(rng: random.Random, text: str) -> str:
    """One misread: a confusable character (or pair) in ``text`` replaced by its lookalike."""
    spots = [(i, a, b) for a, b in OCR_PAIRS for i in _find_all(text, a)]
    spots += [(i, c, HANZI_LOOKALIKES[c]) for i, c in enumerate(text) if c in HANZI_LOOKALIKES]
    if not spots:
        return text
    i, a, b = rng.choice(spots)
    return text[:i] + b + text[i + len(a):]


def _find_all(text: str, part: str) -> list[int]:
    out, i = [], text.find(part)
    while i >= 0:
        out.append(i)
        i = text.find(part, i + 1)
    return out


# -- digits ---------------------------------------------------------------------------------

def _digit_spots(text: str, last: int | None) -> list[int]:
    spots = [i for i, c in enumerate(text) if c.isdigit()]
    return spots[-last:] if last is not None else spots


def transpose_digits(rng: random.Random, text: str, last: int | None = None) -> str:
    """Two neighbouring, different digits swapped (``310036`` -> ``301036``); ``last``: only
    among the last that many digits (a phone's subscriber part, not its country code)."""
    spots = _digit_spots(text, last)
    pairs = [(a, b) for a, b in zip(spots, spots[1:], strict=False) if text[a] != text[b]]
    if not pairs:
        return text
    a, b = rng.choice(pairs)
    chars = list(text)
    chars[a], chars[b] = chars[b], chars[a]
    return "".join(chars)


def mistype_digit(rng: random.Random, text: str, last: int | None = None) -> str:
    """One digit replaced by its neighbour on the number row (``5`` -> ``4`` or ``6``)."""
    spots = _digit_spots(text, last)
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + rng.choice(QWERTY_NEIGHBOURS[text[i]]) + text[i + 1:]


def misread_digit(rng: random.Random, text: str, last: int | None = None) -> str:
    """One digit read as a similar-looking digit (``3`` -> ``8``, ``1`` -> ``7``)."""
    spots = [i for i in _digit_spots(text, last) if text[i] in DIGIT_MISREADS]
    if not spots:
        return text
    i = rng.choice(spots)
    return text[:i] + DIGIT_MISREADS[text[i]] + text[i + 1:]


# -- names ----------------------------------------------------------------------------------

def drop_name_part(rng: random.Random, text: str, given: str, syllables: tuple[str, ...],
                   given_zh: str = "") -> str:
    """A part of the given name lost: hanzi ``王小明`` -> ``王明``; ``Wang Xiaoming`` ->
    ``Wang Xiao`` or ``Wang X.``; ``Sarah Davis`` -> ``S. Davis``; ``Min-jun Kim`` ->
    ``Min Kim``; ``Wang Xiao Ming`` -> ``Wang Ming``. ``given``: the given name as written
    in Latin script, ``syllables`` its pinyin syllables, ``given_zh`` its hanzi."""
    if not text.isascii():
        if len(given_zh) == 2 and text.endswith(given_zh):
            keep = given_zh[rng.randrange(2)]
            return text[:-2] + keep
        return text
    tokens = text.split(" ")
    low = [t.lower() for t in tokens]
    if len(syllables) >= 2 and len(tokens) >= 3 and all(s in low for s in syllables):
        del tokens[low.index(syllables[rng.randrange(len(syllables))])]
        return " ".join(tokens)
    g = given.lower()
    if g not in low or len(tokens) < 2:
        return text
    i = low.index(g)
    word = tokens[i]
    r = rng.random()
    if len(syllables) >= 2 and r < 0.6:
        part = syllables[0] if rng.random() < 0.5 else syllables[-1]
        tokens[i] = _keep_case(word, part) if word.isupper() else part.capitalize()
    elif "-" in word and r < 0.6:
        tokens[i] = word.split("-")[0]
    else:
        tokens[i] = word[0] + "."
    return " ".join(tokens)


def swap_name_parts(text: str) -> str:
    """The family and given fields typed the other way round (``Sarah Davis`` ->
    ``Davis Sarah``); Latin script of two or more words only."""
    tokens = text.split(" ")
    if not text.isascii() or len(tokens) < 2:
        return text
    return " ".join(tokens[1:] + tokens[:1])


# -- companies ------------------------------------------------------------------------------

def abbreviate_company(rng: random.Random, text: str, city_prefixes: tuple[str, ...] = ()
                       ) -> str:
    """One abbreviation a hurried typist or a card's layout makes: a word shortened
    (``International`` -> ``Intl``, ``Trading`` -> ``Trdg``), the city prefix dropped
    (``Hangzhou Qihang Trading`` -> ``Qihang Trading``, ``杭州启航贸易`` -> ``启航贸易``), or
    the name before the legal suffix reduced to its initials (``VHT Limited``)."""
    options: list[str] = []
    for city in city_prefixes:
        if city and text.startswith(city) and len(text) > len(city) + 2:
            options.append(text[len(city):].lstrip())
    words = [(long, short) for long, short in COMPANY_ABBREVIATIONS if long in text]
    if words:
        long, short = rng.choice(words)
        options.append(text.replace(long, short, 1))
    if text.isascii():
        core, suffix = _split_suffix(text)
        capitals = [w for w in core.split(" ") if w[:1].isupper() and w.isalpha()]
        if len(capitals) >= 2:
            initials = "".join(w[0] for w in capitals)
            options.append(f"{initials} {suffix}" if suffix else initials)
    return rng.choice(options) if options else text


def _split_suffix(text: str) -> tuple[str, str]:
    """(core, legal suffix) of an English company name; the suffix '' when none is known."""
    known = sorted({s for k, vs in EN_SUFFIX_VARIANTS.items() for s in (k, *vs) if s},
                   key=len, reverse=True)
    for s in known:
        if text.endswith(" " + s):
            return text[:-len(s) - 1], s
    return text, ""


def change_legal_suffix(rng: random.Random, text: str) -> str:
    """The legal form written another way (``Co., Ltd.`` -> ``Co. Ltd``, ``有限公司`` ->
    ``有限责任公司``); only when the name ends in a known suffix, never to nothing (that is
    an abbreviation's business)."""
    if not text.isascii():
        for suffix in sorted(ZH_SUFFIX_VARIANTS, key=len, reverse=True):
            alts = [a for a in ZH_SUFFIX_VARIANTS[suffix] if a]
            if text.endswith(suffix) and alts:
                return text[:-len(suffix)] + rng.choice(alts)
        return text
    core, suffix = _split_suffix(text)
    if not suffix:
        return text
    family = {s for k, vs in EN_SUFFIX_VARIANTS.items() if suffix == k or suffix in vs
              for s in (k, *vs) if s and s != suffix}
    return f"{core} {rng.choice(sorted(family))}" if family else text
