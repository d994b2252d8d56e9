"""How one person's contact fields drift between forms: the cases identity resolution meets.

Every function takes the simulation's ``random.Random`` and returns a string (and, where the
caller labels records, a short tag naming the kind of drift).
"""

from __future__ import annotations

import random
import unicodedata

from producers.simulator.lexicon import EN_SUFFIX_VARIANTS, PLUS_TAGS, STREET_ABBREVIATIONS

PHONE_STYLES = (
    "e164", "intl_spaced", "intl_dashed", "idd", "idd_spaced", "paren_cc",
    "national", "national_spaced", "national_dashed",
)
GMAIL = frozenset({"gmail.com", "googlemail.com"})


def fold_accents(text: str) -> str:
    """'Chloé Lefèvre' -> 'Chloe Lefevre'; 'ß' -> 'ss'."""
    text = text.replace("ß", "ss")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def german_fold(text: str) -> str:
    """'Müller' -> 'Mueller' (the German transliteration, not the plain fold)."""
    for a, b in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("Ä", "Ae"), ("Ö", "Oe"), ("Ü", "Ue"),
                 ("ß", "ss")):
        text = text.replace(a, b)
    return text


def typo(rng: random.Random, text: str) -> str:
    """One keyboard slip in a Latin-script word: swap, drop or double a letter."""
    letters = [i for i, c in enumerate(text) if c.isalpha() and c.isascii()]
    if len(letters) < 4:
        return text
    i = rng.choice(letters[1:-1])
    kind = rng.random()
    if kind < 0.4 and i + 1 < len(text) and text[i + 1].isalpha():
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind < 0.7:
        return text[:i] + text[i + 1:]
    return text[:i] + text[i] + text[i:]


# -- phones -------------------------------------------------------------------------------

def phone_groups(nsn: str, groups: tuple[int, ...]) -> list[str]:
    parts, pos = [], 0
    for n in groups:
        if pos >= len(nsn):
            break
        parts.append(nsn[pos:pos + n])
        pos += n
    if pos < len(nsn):
        parts[-1] += nsn[pos:]
    return parts


def format_phone(cc: str, nsn: str, groups: tuple[int, ...], trunk: str, style: str) -> str:
    """Render one number in a style: '+86 138 1234 5678', '0086...', '138-1234-5678'..."""
    parts = phone_groups(nsn, groups)
    if style == "e164":
        return f"+{cc}{nsn}"
    if style == "intl_spaced":
        return f"+{cc} " + " ".join(parts)
    if style == "intl_dashed":
        return f"+{cc}-" + "-".join(parts)
    if style == "idd":
        return f"00{cc}{nsn}"
    if style == "idd_spaced":
        return f"00{cc} " + " ".join(parts)
    if style == "paren_cc":
        return f"(+{cc}) {nsn}"
    if style == "us_paren" and cc == "1":
        return f"({parts[0]}) {parts[1]}-{parts[2]}"
    if style == "national_spaced":
        return trunk + " ".join(parts)
    if style == "national_dashed":
        return trunk + "-".join(parts)
    return trunk + nsn


def other_phone_style(rng: random.Random, style: str, cc: str) -> str:
    styles = PHONE_STYLES + (("us_paren",) if cc == "1" else ())
    choice = rng.choice(styles)
    while choice == style:
        choice = rng.choice(styles)
    return choice


# -- e-mail -------------------------------------------------------------------------------

def email_case(rng: random.Random, email: str) -> str:
    local, _, domain = email.partition("@")
    mode = rng.random()
    if mode < 0.3:
        return email.upper()
    if mode < 0.6:
        return local.capitalize() + "@" + domain
    parts = local.split(".")
    cased = ".".join(p.capitalize() for p in parts)
    if cased == local:
        cased = local[:1].upper() + local[1:]
    return cased + "@" + (domain.capitalize() if rng.random() < 0.3 else domain)


def email_dots(rng: random.Random, email: str) -> str:
    """Move, add or drop dots in the local part (Gmail ignores them; most providers don't)."""
    local, _, domain = email.partition("@")
    if "." in local and rng.random() < 0.6:
        new = local.replace(".", "")
    else:
        plain = local.replace(".", "")
        if len(plain) < 3:
            return f"{local}.x@{domain}"
        cut = rng.randrange(1, len(plain) - 1)
        new = plain[:cut] + "." + plain[cut:]
    return f"{new}@{domain}"


def email_plus(rng: random.Random, email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local}+{rng.choice(PLUS_TAGS)}@{domain}"


def email_variant(rng: random.Random, email: str, other: str | None) -> tuple[str | None, str]:
    """An inquiry's e-mail for a buyer registered with ``email``; returns (email, tag)."""
    domain = email.partition("@")[2]
    r = rng.random()
    if r < 0.33:
        return email, "email_same"
    if r < 0.48:
        return email_case(rng, email), "email_case"
    if r < 0.58:
        if domain in GMAIL and rng.random() < 0.25:
            swapped = "googlemail.com" if domain == "gmail.com" else "gmail.com"
            return email.partition("@")[0] + "@" + swapped, "email_gmail_alias"
        return email_dots(rng, email), "email_dots"
    if r < 0.68:
        return email_plus(rng, email), "email_plus"
    if r < 0.84 and other:
        return other, "email_other_mailbox"
    return None, "email_absent"


# -- names --------------------------------------------------------------------------------

def pinyin_forms(family: str, syllables: tuple[str, ...]) -> list[tuple[str, str]]:
    """Latin renderings of a Chinese name, tagged: 'Wang Xiaoming', 'Xiaoming Wang', ..."""
    given = "".join(syllables).capitalize()
    return [
        (f"{family} {given}", "name_pinyin"),
        (f"{given} {family}", "name_pinyin_given_first"),
        (f"{family.upper()} {given}", "name_pinyin"),
        (f"{family}{given}", "name_pinyin_joined"),
        (f"{family.lower()} {given.lower()}", "name_pinyin"),
        (f"{family} " + " ".join(s.capitalize() for s in syllables), "name_pinyin_syllables"),
    ]


def latin_forms(rng: random.Random, given: str, family: str, family_first: bool
                ) -> list[tuple[str, str]]:
    """Renderings of a Latin-script name in the other order, other case, without accents."""
    forms = [
        (f"{family} {given}" if not family_first else f"{given} {family}", "name_order"),
        (f"{family.upper()} {given}", "name_case"),
        (f"{given} {family}".lower() if not family_first else f"{family} {given}".lower(),
         "name_case"),
        (f"{given[0]}. {family}", "name_initial"),
    ]
    folded = fold_accents(f"{given} {family}")
    if folded != f"{given} {family}":
        forms.append((folded, "name_accents"))
        forms.append((german_fold(f"{given} {family}"), "name_accents"))
    if "-" in given:
        joined = given.replace("-", "").capitalize()
        forms.append((f"{family} {joined}" if family_first else f"{joined} {family}",
                       "name_hyphen"))
    return forms


def hanzi_typo(family: str, given_chars: list[tuple[str, str, str]],
               rng: random.Random) -> str | None:
    """Swap one given-name character for a homophone (伟 -> 炜); None if there is none."""
    options = [i for i, (_, _, homo) in enumerate(given_chars) if homo]
    if not options:
        return None
    i = rng.choice(options)
    chars = [c for c, _, _ in given_chars]
    chars[i] = rng.choice(given_chars[i][2])
    return family + "".join(chars)


# -- companies and addresses ----------------------------------------------------------------

def en_suffix_variant(rng: random.Random, suffix: str) -> str:
    return rng.choice(EN_SUFFIX_VARIANTS.get(suffix, ("",)))


def join_company(core: str, suffix: str, zh: bool) -> str:
    if not suffix:
        return core
    return core + suffix if zh else f"{core} {suffix}"


def abbreviate_street(rng: random.Random, line: str) -> str:
    """'Regent Street' -> 'Regent St.', 'Friedrichstraße' -> 'Friedrichstr.' (or expand back)."""
    hits = [(a, b) for a, b in STREET_ABBREVIATIONS if a in line]
    if hits:
        a, b = rng.choice(hits)
        return line.replace(a, b, 1)
    back = [(a, b) for a, b in STREET_ABBREVIATIONS if b in line]
    if back:
        a, b = rng.choice(back)
        return line.replace(b, a, 1)
    return line.upper()
