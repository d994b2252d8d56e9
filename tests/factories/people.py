"""Labelled person records with typos and no shared identifier, for the weighed path.

Like the public FEBRL sets (names, address, suburb, state, postcode; no email, phone or
id), written here so the tests need nothing outside the repository: each person has an
original record and up to three duplicates, each duplicate with one to three slips (a
letter swapped, dropped or doubled, the name parts swapped, two postcode digits
transposed, a field left out). Deterministic for a seed; records come shuffled.
"""

from __future__ import annotations

import random

GIVEN = ("olivia", "jack", "charlotte", "william", "amelia", "lachlan", "isla", "noah",
         "mia", "thomas", "grace", "james", "chloe", "ethan", "sophie", "oliver", "emily",
         "lucas", "ruby", "henry", "zoe", "samuel", "harper", "liam", "ella", "joshua")
FAMILY = ("smith", "jones", "williams", "brown", "wilson", "taylor", "johnson", "white",
          "martin", "anderson", "thompson", "nguyen", "thomas", "walker", "harris", "lee",
          "ryan", "robinson", "kelly", "king", "davis", "wright", "evans", "roberts",
          "green", "hall", "wood", "jackson", "clarke", "patel", "khan", "lewis", "mitchell",
          "campbell", "morris", "gencheff", "hislop", "prideaux", "webb", "morrison")
STREETS = ("fawkner street", "pohlman street", "huelin circuit", "braine street",
           "cusack place", "aurora close", "bungonia street", "elder street", "dakin place",
           "clark close", "paul coe crescent", "noarlunga crescent", "sullivan crescent",
           "mortimer lewis drive", "johnston street", "trainer court", "sherwood garden")
SUBURBS = ("kirrawee", "inglewood", "belconnen", "freshwater", "mitcham", "dalby",
           "wynnum west", "childers", "bittern", "clareville", "cowley", "annandale")
STATES = ("nsw", "vic", "qld", "wa", "sa", "tas", "act")


def typo(rng: random.Random, word: str | None) -> str | None:
    if not word or len(word) < 3:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.random()
    if kind < 0.4:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind < 0.7:
        return word[:i] + word[i + 1:]
    return word[:i] + word[i] + word[i:]


def person_records(people: int, seed: int = 1) -> tuple[list[dict], dict[str, str]]:
    """``(records, truth)``: records in ``leadloom resolve``'s input format, and each
    record id's person."""
    rng = random.Random(seed)
    records: list[dict] = []
    for n in range(people):
        original = {
            "given_name": rng.choice(GIVEN),
            "family_name": rng.choice(FAMILY) + rng.choice(("", "", "s", "ley", "ford", "er")),
            "number": str(rng.randint(1, 300)), "street": rng.choice(STREETS),
            "city": rng.choice(SUBURBS) + rng.choice(("", " north", " south", " heights")),
            "province": rng.choice(STATES),
            "postcode": str(rng.randint(2000, 7999)),
        }
        records.append(_render(original, f"p{n}"))
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            records.append(_render(_slip(rng, original), f"p{n}"))
    rng.shuffle(records)
    truth = {}
    for i, record in enumerate(records):
        record["id"] = f"r{i:06d}"
        truth[record["id"]] = record.pop("person")
    return records, truth


def _slip(rng: random.Random, original: dict) -> dict:
    dup = dict(original)
    for _ in range(rng.randint(1, 3)):
        kind = rng.random()
        if kind < 0.3:
            field = rng.choice(("given_name", "family_name"))
            dup[field] = typo(rng, dup[field])
        elif kind < 0.4:
            dup["given_name"], dup["family_name"] = dup["family_name"], dup["given_name"]
        elif kind < 0.55 and dup["postcode"]:
            p = dup["postcode"]
            dup["postcode"] = p[0] + p[2] + p[1] + p[3]
        elif kind < 0.7:
            dup["street"] = typo(rng, dup["street"])
        elif kind < 0.8:
            dup["city"] = typo(rng, dup["city"])
        else:
            dup[rng.choice(("number", "postcode", "city"))] = None
    return dup


def _render(p: dict, person: str) -> dict:
    address = " ".join(x for x in (p["number"], p["street"]) if x) or None
    return {
        "person": person, "country": "AU",
        "full_name": f"{p['given_name']} {p['family_name']}",
        "given_name": p["given_name"], "family_name": p["family_name"],
        "city": p["city"], "province": p["province"], "postcode": p["postcode"],
        "address": address,
    }
