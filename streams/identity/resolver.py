"""Incremental buyer resolution: blocking keys, evidence scoring, union-find with merges.

Records are processed one at a time, in order. A record joins every existing buyer it
shares an identifier with; when that is two buyers, they merge: the older buyer survives
and the merge is recorded with its evidence and score. Weak evidence joins a record to
one buyer only, and never merges buyers.

Rules (precision first: a false merge shows one buyer's leads under another's name):
- a shared badge id matches outright: the fair issues a badge to one person (scans and
  procurement steps carry only the badge; a reissued badge is a new id);
- a shared strong identifier (normalised email, E.164 phone, WeChat id) matches, unless
  both records carry names that cannot be one person's: no shared pinyin form, Jaro-
  Winkler similarity below 0.9 (typos score above), and not initials of each other
  (``S. Davis``/``Sarah Davis``), and not the same surname once romanisations are mapped
  (``李君``/``Karen Lee``, ``WangJieqi``/``Fiona Wong``). A team mailbox or a switchboard is not one person;
- the same mailbox up to ``+tags`` and ``. _ -`` (``davis_.sarah@`` / ``davis_sarah@``
  at a provider that does not ignore them) is weak evidence: it matches only when both
  records carry compatible names and nothing that tells them apart: no differing phone,
  WeChat id, company (similarity < 80, same script) or city (score 0.9);
- names, companies and addresses never match on their own, however similar: the same
  name at the same company in the same city is, at a fair, often two people (measured
  on the simulator's labelled records: such rules cost far more precision than they
  gain recall: with name + similar company as weak evidence, precision fell from 0.998
  to 0.990 on 50k records for recall 0.954 -> 0.964: namesakes at one firm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz.distance import JaroWinkler
from rapidfuzz.fuzz import ratio

from streams.identity import normalize as norm

MATCH_THRESHOLD = 0.85
NAME_TYPO_AT_LEAST = 0.9
COMPANY_AT_LEAST = 80.0


@dataclass(frozen=True)
class Features:
    badges: frozenset[str]
    emails: frozenset[str]
    loose_emails: frozenset[str]
    phones: frozenset[str]
    wechats: frozenset[str]
    names: frozenset[str]
    tokens: tuple[str, ...]
    surnames: frozenset[str]
    company: str | None
    city: str | None

    @classmethod
    def of(cls, record: dict) -> Features:
        country = record.get("country")
        full = record.get("full_name") or " ".join(
            p for p in (record.get("family_name"), record.get("given_name")) if p
        )
        email, phone = norm.email(record.get("email")), norm.phone(record.get("phone"), country)
        wechat = norm.wechat(record.get("wechat") or record.get("wechat_id"))
        badge = (record.get("badge_id") or "").strip()
        return cls(
            badges=frozenset([badge] if badge else []),
            emails=frozenset([email] if email else []),
            loose_emails=frozenset(
                [v] if (v := norm.loose_email(record.get("email"))) else []
            ),
            phones=frozenset([phone] if phone else []),
            wechats=frozenset([wechat] if wechat else []),
            names=norm.name_forms(full),
            tokens=norm.name_tokens(full),
            surnames=norm.surname_keys(full),
            company=norm.company(record.get("company")),
            city=_city(record.get("city")),
        )

    def blocking_keys(self) -> list[tuple[str, str]]:
        keys = [("b", v) for v in self.badges]
        keys += [("e", v) for v in self.emails] + [("p", v) for v in self.phones]
        keys += [("w", v) for v in self.wechats] + [("l", v) for v in self.loose_emails]
        return keys


@dataclass(frozen=True)
class Merge:
    """Two buyers found to be one: ``absorbed`` now resolves to ``survivor``."""

    survivor: str
    absorbed: str
    record_id: str
    evidence: tuple[str, ...]
    score: float


def names_compatible(a: Features, b: Features) -> bool:
    """Could these two names belong to one person? True when either is missing."""
    if not a.names or not b.names or a.names & b.names:
        return True
    best = max(JaroWinkler.similarity(x, y) for x in a.names for y in b.names)
    if best >= NAME_TYPO_AT_LEAST or _initials_agree(a.tokens, b.tokens):
        return True
    # A Chinese name beside a Western or Cantonese one (``李君`` / ``Karen Lee``,
    # ``WangJieqi`` / ``Fiona Wong``): the surname agrees once romanisations are mapped.
    return bool(a.surnames & b.surnames)


def score(a: Features, b: Features) -> tuple[float, tuple[str, ...]]:
    """Match score of two records and the evidence behind it."""
    if a.badges & b.badges:
        return 1.0, ("badge",)  # a badge is issued to one person: no name check
    shared = tuple(kind for kind, x, y in (
        ("email", a.emails, b.emails), ("phone", a.phones, b.phones),
        ("wechat", a.wechats, b.wechats),
    ) if x & y)
    if shared:
        if not names_compatible(a, b):
            return 0.0, (*shared, "names_conflict")
        return 1.0, shared
    if (a.loose_emails & b.loose_emails and a.names and b.names and names_compatible(a, b)
            and not _conflicting_identifiers(a, b)):
        return 0.9, ("email_variant", "name")
    return 0.0, ()


def _conflicting_identifiers(a: Features, b: Features) -> bool:
    """Both records carry a phone (or WeChat id, or company, or city) and they differ."""
    if any(x and y and not x & y for x, y in ((a.phones, b.phones), (a.wechats, b.wechats))):
        return True
    if a.company and b.company and norm.has_hanzi(a.company) == norm.has_hanzi(b.company):
        if ratio(a.company, b.company) < COMPANY_AT_LEAST:
            return True
    if a.city and b.city and norm.has_hanzi(a.city) == norm.has_hanzi(b.city):
        return a.city != b.city
    return False


def _initials_agree(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """``S. Davis`` and ``Sarah Davis``: one full token in common, the rest initials."""
    if not a or not b or len(a) != len(b):
        return False
    rest_a, rest_b = list(a), list(b)
    common = set(a) & set(b)
    if not common:
        return False
    for token in common:
        rest_a.remove(token)
        rest_b.remove(token)
    return all(x[0] == y[0] and (len(x) == 1 or len(y) == 1) for x, y in zip(rest_a, rest_b))


@dataclass
class Resolver:
    """The incremental engine: ``add`` one record, get its buyer id."""

    parent: dict[str, str] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)
    features: dict[str, Features] = field(default_factory=dict)
    index: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    merges: list[Merge] = field(default_factory=list)
    members: dict[str, list[str]] = field(default_factory=dict)  # root -> its records

    def find(self, record_id: str) -> str:
        root = record_id
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[record_id] != root:  # path compression
            self.parent[record_id], record_id = root, self.parent[record_id]
        return root

    def add(self, record: dict) -> str:
        """Resolve one record (needs ``id``); return the buyer id it belongs to now."""
        record_id = str(record["id"])
        if record_id in self.parent:
            return self.find(record_id)
        feats = Features.of(record)
        matches: dict[str, tuple[float, tuple[str, ...]]] = {}
        keys = feats.blocking_keys()
        for other in self._candidates(keys):
            root = self.find(other)
            if root in matches and matches[root][0] >= 1.0:
                continue
            s, evidence = score(feats, self.features[other])
            if s < 1.0 and s >= MATCH_THRESHOLD and any(
                _conflicting_identifiers(feats, self.features[m]) for m in self.members[root]
            ):
                continue  # weak evidence, contradicted by another record of that buyer
            if s >= MATCH_THRESHOLD and s > matches.get(root, (0.0,))[0]:
                matches[root] = (s, evidence)
        self.parent[record_id] = record_id
        self.members[record_id] = [record_id]
        self.seq[record_id] = len(self.seq)
        self.features[record_id] = feats
        for key in keys:
            self.index.setdefault(key, []).append(record_id)
        roots = sorted(_decisive(matches), key=self.seq.__getitem__)
        if not roots:
            return record_id
        survivor = roots[0]
        self.parent[record_id] = survivor
        self.members[survivor].extend(self.members.pop(record_id))
        for absorbed in roots[1:]:
            s, evidence = matches[absorbed]
            self.parent[absorbed] = survivor
            self.members[survivor].extend(self.members.pop(absorbed))
            self.merges.append(Merge(survivor, absorbed, record_id, evidence, s))
        return survivor

    def buyer_of(self, record_id: str) -> str:
        return self.find(record_id)

    def _candidates(self, keys: list[tuple[str, str]]) -> list[str]:
        seen: dict[str, None] = {}
        for key in keys:
            block = self.index.get(key, ())
            for other in block:
                seen.setdefault(other)
        return list(seen)


def _decisive(matches: dict[str, tuple[float, tuple[str, ...]]]) -> list[str]:
    """The buyers a record joins. Strong evidence (a shared identifier) may join and merge
    several buyers; weak evidence only ever joins one, and never when strong evidence
    points elsewhere: a mailbox variant that fits two namesakes fits neither for sure."""
    strong = [root for root, (s, _) in matches.items() if s >= 1.0]
    if strong:
        return strong
    return list(matches) if len(matches) == 1 else []


def _city(value: str | None) -> str | None:
    if not value:
        return None
    text = value.strip().lower()
    return text[:-1] if text.endswith(("市", "省")) else text
