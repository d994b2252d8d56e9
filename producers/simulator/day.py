"""One buyer's day at the fair: registration, booth scans, an inquiry, procurement steps.

``BuyerDay.run`` draws the next buyer, plans their events in causal order (registration,
scans, inquiry, procurement) and emits at most the remaining event budget, so a run stops
at exactly the requested number of valid events; cutting from the end never leaves a
procurement step without the engagement it follows from. ``BuyerDay.run_surge`` does the
same for a buyer of a surge: arriving in the burst, scanning one cluster's booths.

Every emitted event is also tallied for the lead-intelligence truth (``Insight``).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

from producers.simulator.buyers import Buyer, BuyerFactory
from producers.simulator.channels import INQUIRY as INQUIRY_FORM
from producers.simulator.channels import add_noise, registration_channel
from producers.simulator.clock import FairClock, iso_ms
from producers.simulator.contacts import inquiry_contact, registration_contact, reissue_contact
from producers.simulator.insight import Insight
from producers.simulator.params import SimulationParams
from producers.simulator.payloads import STEPS, inquiry_terms, note, procurement_terms
from producers.simulator.recorder import INQUIRY, PROCUREMENT, REGISTRATION, SCAN, Recorder
from producers.simulator.suppliers import SupplierBook
from schemas.reference import CLUSTERS, CLUSTERS_BY_ID, Booth, booth_roster, booths_by_exhibitor


def _pick(rng: random.Random, items: Sequence, cum: list[float]):
    """Weighted choice by cumulative weights (``rng.choices(...)[0]`` without the overhead)."""
    return items[min(bisect_right(cum, rng.random() * cum[-1]), len(items) - 1)]


@dataclass
class Pending:
    event_type: str
    doc: dict
    occurred: int
    received: int
    buyer: str
    cluster: str | None = None
    badge: str | None = None
    tags: list[str] | None = None
    late: bool = False
    exhibitor: str | None = None  # a scan's booth exhibitor (wedge scans do not say it)
    best: list[str] | None = None  # an inquiry's hidden best suppliers
    channel: str | None = None  # a buyer record's channel (producers.simulator.channels)
    clean_doc: dict | None = None  # the event without the channel's errors, if it has any


@dataclass
class _Visit:
    """What the buyer did so far today: booths seen, engagements worth following up."""

    visited: list[Booth] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    engaged: dict[str, tuple[int, float, bool]] = field(default_factory=dict)


class BuyerDay:
    def __init__(self, rng: random.Random, p: SimulationParams, clock: FairClock,
                 rec: Recorder, factory: BuyerFactory, fair_id: str,
                 new_id: Callable[[], str], book: SupplierBook, insight: Insight,
                 noise_rng: random.Random | None = None) -> None:
        """``noise_rng``: the draws of the channels' typing and reading errors (None: no
        errors); a generator of their own, so that the day's events do not depend on them."""
        self.rng, self.p, self.clock, self.rec = rng, p, clock, rec
        self.factory, self.fair_id, self.new_id = factory, fair_id, new_id
        self.book, self.insight = book, insight
        self.roster = booth_roster()
        weights = [rng.lognormvariate(0, 0.6) for _ in self.roster]
        self.global_cum = list(accumulate(weights))
        self.cluster_booths: dict[str, list[Booth]] = {c.id: [] for c in CLUSTERS}
        cluster_w: dict[str, list[float]] = {c.id: [] for c in CLUSTERS}
        for booth, w in zip(self.roster, weights, strict=True):
            self.cluster_booths[booth.cluster_id].append(booth)
            cluster_w[booth.cluster_id].append(w)
        self.cluster_cum = {cid: list(accumulate(ws)) for cid, ws in cluster_w.items()}
        self.cluster_ids = [c.id for c in CLUSTERS]
        self.cluster_pop = [sum(cluster_w[c]) * rng.lognormvariate(0, 0.35)
                            for c in self.cluster_ids]
        self.devices = {b.id: self._devices(b) for b in self.roster}
        self.ratings = [r for r, _ in p.ratings]
        self.rating_cum = list(accumulate(w for _, w in p.ratings))
        self.lift = dict(p.rating_lift)
        self.targets_cum = list(accumulate(p.inquiry_targets))
        # Draws of its own for the version 2 option, so that without it the day is unchanged.
        self.v2_rng = random.Random(rng.random()) if p.scan_v2_share > 0 else None
        self.noise_rng = noise_rng

    def _devices(self, booth: Booth) -> list[tuple[str, str | None, str | None]]:
        """(device id, staff id, method); method None for keyboard-wedge scanners."""
        rng, out = self.rng, []
        for j in range(1, rng.randint(*self.p.scanners_per_booth) + 1):
            device = f"SCN-{booth.id}-{j}"
            if rng.random() < self.p.wedge_share:
                out.append((device, None, None))
            else:
                staff = f"STF-{booth.exhibitor_id}-{j:02d}" if rng.random() < 0.8 else None
                out.append((device, staff, "qr" if rng.random() < 0.65 else "nfc"))
        return out

    @staticmethod
    def envelope(event_id: str, event_type: str, fair_id: str, occurred: int, received: int,
                 source: dict, payload: dict) -> dict:
        return {
            "event_id": event_id, "event_type": event_type, "schema_version": 1,
            "fair_id": fair_id, "occurred_at": iso_ms(occurred), "received_at": iso_ms(received),
            "source": source, "payload": payload,
        }

    def _doc(self, event_type: str, occurred: int, received: int, source: dict,
             payload: dict) -> dict:
        return self.envelope(self.new_id(), event_type, self.fair_id, occurred, received,
                             source, payload)

    def _delay(self) -> int:
        lo, hi = self.p.receive_delay_s
        return round(1000 * (lo + min(hi - lo, self.rng.expovariate(2.0))))

    # -- the day ---------------------------------------------------------------------------

    def run(self, budget: int) -> int:
        """Plan the next buyer's day and emit up to ``budget`` of its events; return count."""
        return self._emit(self._plan()[:budget])

    def run_surge(self, budget: int, cluster_id: str, start_ms: int, end_ms: int) -> int:
        """Plan one more buyer of a surge at ``cluster_id`` in [start_ms, end_ms) and emit up
        to ``budget`` of their events; return count."""
        return self._emit(self._plan_surge(cluster_id, start_ms, end_ms)[:budget])

    def _emit(self, items: list[Pending]) -> int:
        rec, rng, p, ins = self.rec, self.rng, self.p, self.insight
        for it in items:
            row = rec.valid(it.event_type, it.doc, it.occurred, it.received,
                            buyer=it.buyer, cluster=it.cluster, badge=it.badge, tags=it.tags,
                            channel=it.channel, clean_doc=it.clean_doc)
            if it.event_type == SCAN:
                ins.scan(it.cluster, it.buyer, it.exhibitor)  # type: ignore[arg-type]
                if it.late:
                    rec.late_ids.append(it.doc["event_id"])
                if rng.random() < p.duplicate_rate:
                    lo, hi = p.duplicate_delay_s
                    rec.duplicate(row, it.received + rng.randint(round(lo * 1000),
                                                                 round(hi * 1000)))
            elif it.event_type == INQUIRY:
                ins.inquiry(it.cluster, it.buyer, it.doc["event_id"],  # type: ignore[arg-type]
                            it.doc["payload"], it.best)
            elif it.event_type == PROCUREMENT:
                ins.step(it.cluster, it.buyer, it.doc["payload"])  # type: ignore[arg-type]
        return len(items)

    def _plan(self) -> list[Pending]:
        rng, p, clock = self.rng, self.p, self.clock
        b = self.factory.create()
        b.favourites = self._favourites()
        online_only = rng.random() < p.online_only_rate
        if online_only and len(self.factory.buyers) > 2:  # the first two register (namesakes)
            return [self._inquiry(b, clock.uniform_ms(rng, clock.open_ms, clock.close_ms),
                                  _Visit())]
        start = clock.arrival_minute(rng)
        stay = max(p.min_visit_minutes, round(rng.uniform(*p.visit_hours) * 60))
        end = min(clock.minutes, start + stay)
        start = max(0, min(start, end - p.min_visit_minutes))
        times = sorted(clock.scan_ms(rng, start, end)
                       for _ in range(rng.randint(*p.booths_per_buyer))
                       if rng.random() < p.scan_given_visit)
        first = times[0] if times else clock.open_ms + start * 60_000
        desk = clock.at(p.registration_desk_hour)
        reg = max(desk, first - rng.randint(60_000, 1_200_000))
        if reg >= first:
            reg = first - 1_000
        badges = [(reg, self.factory.new_badge())]
        items = [self._registration(b, badges[0][1], reg, reissue=False)]
        if len(times) >= 4 and rng.random() < p.badge_reissue_rate:
            cut = rng.randrange(2, len(times) - 1)
            badges.append(((times[cut - 1] + times[cut]) // 2, self.factory.new_badge()))
        visit, reissued = _Visit(), False
        for t in times:
            if len(badges) == 2 and t > badges[1][0] and not reissued:
                items.append(self._registration(b, badges[1][1], badges[1][0], reissue=True))
                reissued = True
            badge = badges[-1][1] if t > badges[-1][0] else badges[0][1]
            items.append(self._scan(b, badge, self._pick_booth(b, visit), t, visit))
        b.badge_id = badges[-1][1]
        if rng.random() < p.inquiry_rate:
            items.append(self._inquiry(b, clock.uniform_ms(rng, clock.open_ms, clock.close_ms),
                                       visit))
        for exhibitor, (t0, lift, matched) in visit.engaged.items():
            items.extend(self._procurement(b, exhibitor, t0, lift, matched, badges))
        return items

    def _plan_surge(self, cluster_id: str, start: int, end: int) -> list[Pending]:
        """A buyer drawn to one cluster in a burst: registers just before, scans a few of its
        booths within the window, may write in to it, follows up like anyone else."""
        rng, p, clock = self.rng, self.p, self.clock
        b = self.factory.create()
        b.favourites = (cluster_id,)  # their inquiry, if any, goes to the surging cluster
        span = max(1, end - start)
        times = sorted(start + int(rng.random() * span)
                       for _ in range(rng.randint(*p.surge_scans)))
        reg = max(clock.at(p.registration_desk_hour), times[0] - rng.randint(60_000, 600_000))
        if reg >= times[0]:
            reg = times[0] - 1_000
        badge = self.factory.new_badge()
        b.badge_id = badge
        items = [self._registration(b, badge, reg, reissue=False)]
        visit = _Visit()
        booths, cum = self.cluster_booths[cluster_id], self.cluster_cum[cluster_id]
        for t in times:
            for _ in range(6):
                booth = _pick(rng, booths, cum)
                if booth.id not in visit.seen:
                    break
            visit.seen.add(booth.id)
            items.append(self._scan(b, badge, booth, t, visit))
        if rng.random() < p.surge_inquiry_rate:
            items.append(self._inquiry(b, start + int(rng.random() * span), visit))
        for exhibitor, (t0, lift, matched) in visit.engaged.items():
            items.extend(self._procurement(b, exhibitor, t0, lift, matched, [(reg, badge)]))
        return items

    def _favourites(self) -> tuple[str, ...]:
        rng, k = self.rng, self.rng.randint(*self.p.favourite_clusters)
        chosen: list[str] = []
        while len(chosen) < min(k, len(self.cluster_ids)):
            cid = rng.choices(self.cluster_ids, self.cluster_pop)[0]
            if cid not in chosen:
                chosen.append(cid)
        return tuple(chosen)

    def _pick_booth(self, b: Buyer, visit: _Visit) -> Booth:
        rng, p = self.rng, self.p
        if visit.visited and rng.random() < p.revisit_rate:
            return rng.choice(visit.visited)
        for _ in range(6):
            if rng.random() < p.favourite_share:
                cid = rng.choice(b.favourites)
                booth = _pick(rng, self.cluster_booths[cid], self.cluster_cum[cid])
            else:
                booth = _pick(rng, self.roster, self.global_cum)
            if booth.id not in visit.seen:
                break
        if booth.id not in visit.seen:
            visit.seen.add(booth.id)
            visit.visited.append(booth)
        return booth

    # -- events ----------------------------------------------------------------------------

    def _registration(self, b: Buyer, badge: str, t: int, reissue: bool) -> Pending:
        rng, p = self.rng, self.p
        if reissue:
            contact, tags = reissue_contact(rng, b, p.registration_consent)
        else:
            contact, tags = registration_contact(rng, b, p.registration_consent), []
        if reissue or rng.random() < 0.75:
            source = {"channel": "kiosk", "device_id": f"KIOSK-{rng.randint(1, 24):02d}"}
        else:
            source = {"channel": rng.choice(("web", "wechat"))}
        channel = registration_channel(self.noise_rng, source["channel"])
        typed = self._noised(contact, b, channel, tags)

        def payload_of(fields: dict[str, object]) -> dict[str, object]:
            payload: dict[str, object] = {"badge_id": badge}
            payload.update((k, v) for k, v in fields.items() if v is not None)
            payload["buyer_type"] = b.buyer_type
            return payload

        received = t + self._delay()
        doc = self._doc(REGISTRATION, t, received, source, payload_of(typed))
        clean = {**doc, "payload": payload_of(contact)} if typed != contact else None
        return Pending(REGISTRATION, doc, t, received, b.id, tags=tags, channel=channel,
                       clean_doc=clean)

    def _noised(self, contact: dict[str, object], b: Buyer, channel: str,
                tags: list[str]) -> dict[str, object]:
        """``contact`` as typed through ``channel`` (a copy with its errors, their tags
        appended to ``tags``); ``contact`` itself when the realistic variants are off."""
        if self.noise_rng is None:
            return contact
        typed = dict(contact)
        tags += add_noise(self.noise_rng, typed, b, channel, self.factory.claim)
        return typed

    def _scan(self, b: Buyer, badge: str, booth: Booth, t: int, visit: _Visit) -> Pending:
        rng, p = self.rng, self.p
        device, staff, method = rng.choice(self.devices[booth.id])
        payload: dict[str, object] = {"badge_id": badge, "booth_id": booth.id}
        rating = None
        if method is None:
            payload.update(scanner_device=device, method="wedge")
        else:
            payload.update(exhibitor_id=booth.exhibitor_id, cluster_id=booth.cluster_id,
                           scanner_device=device)
            if staff:
                payload["staff_id"] = staff
            payload["method"] = "manual" if rng.random() < p.manual_rate else method
            rating = _pick(rng, self.ratings, self.rating_cum)
            if rating:
                payload["rating"] = rating
            if rng.random() < p.note_rate:
                payload["note"] = note(rng)
        late = rng.random() < p.late_rate
        if late:
            lo, hi = p.late_delay_h
            received = t + rng.randint(round(lo * 3_600_000), round(hi * 3_600_000))
        else:
            received = t + self._delay()
        if booth.exhibitor_id not in visit.engaged:
            visit.engaged[booth.exhibitor_id] = (t, self.lift.get(rating, 1.0), False)
        doc = self._doc(SCAN, t, received, {"channel": "scanner", "device_id": device}, payload)
        if self.v2_rng is not None and self.v2_rng.random() < p.scan_v2_share:
            _as_scan_version_2(self.v2_rng, doc)
        return Pending(SCAN, doc, t, received, b.id, booth.cluster_id, badge,
                       late=late, exhibitor=booth.exhibitor_id)

    def _inquiry(self, b: Buyer, t: int, visit: _Visit) -> Pending:
        rng, p = self.rng, self.p
        wechat_p = p.inquiry_wechat_channel * (1.3 if b.country == "CN" else 0.3)
        channel = "wechat" if rng.random() < wechat_p else "web"
        cluster = CLUSTERS_BY_ID[rng.choice(b.favourites)]
        mode = rng.choices(("cluster", "exhibitor", "both"), cum_weights=self.targets_cum)[0]
        booths, cum = self.cluster_booths[cluster.id], self.cluster_cum[cluster.id]
        booth = _pick(rng, booths, cum)
        contact, tags = inquiry_contact(rng, b, channel, p)
        typed = self._noised(contact, b, INQUIRY_FORM, tags)
        # The message names the company as the buyer would write it without the form's typo.
        company = contact.get("company")
        terms = inquiry_terms(rng, cluster, b.currency, b.language,
                              company if isinstance(company, str) else None)

        def payload_of(fields: dict[str, object]) -> dict[str, object]:
            payload = {k: v for k, v in fields.items() if v is not None}
            if mode != "exhibitor":
                payload["cluster_id"] = cluster.id
            if mode != "cluster":
                payload["exhibitor_id"] = booth.exhibitor_id
            payload.update(terms)
            payload["channel"] = channel
            return payload

        received = t + self._delay()
        doc = self._doc(INQUIRY, t, received, {"channel": channel}, payload_of(typed))
        clean = {**doc, "payload": payload_of(contact)} if typed != contact else None
        # The target cluster is the one named or, naming only a booth, the booth's: the same.
        best = self.book.best(terms["categories"], terms.get("quantity"),  # type: ignore[arg-type]
                              terms.get("lead_time_days"), cluster.id,  # type: ignore[arg-type]
                              named=booth.exhibitor_id if mode != "cluster" else None)
        # The exhibitor named follows up; naming only a cluster, the supplier the matchmaking
        # system recommends (the best fit), or any of the cluster's booths when none fits.
        follow = booth.exhibitor_id
        if mode == "cluster":
            follow = best[0] if best else follow
            # within the day: a follow-up after closing could never convert
            room = max(0, self.clock.close_ms - t) // 2
            follow_up = t + min(rng.randint(600_000, 7_200_000), room)
        else:
            follow_up = t
        visit.engaged[follow] = (follow_up, 1.0, True)
        return Pending(INQUIRY, doc, t, received, b.id, cluster.id,
                       tags=tags, best=best, channel=INQUIRY_FORM, clean_doc=clean)

    def _procurement(self, b: Buyer, exhibitor: str, t0: int, lift: float, matched: bool,
                     badges: list[tuple[int, str]]) -> list[Pending]:
        rng, p, close = self.rng, self.p, self.clock.close_ms
        rates = p.matchmaking_funnel if matched else p.funnel
        u = rng.random()
        reached = [s for s, r in zip(STEPS, rates, strict=True) if u < min(1.0, r * lift)]
        if not reached:
            return []
        booth = booths_by_exhibitor()[exhibitor]
        supplier = self.book.get(exhibitor)
        category = rng.choice(supplier.categories if supplier
                              else CLUSTERS_BY_ID[booth.cluster_id].categories)
        out, t = [], t0
        for step in reached:
            room = close - t
            if room < 120_000:
                break
            t += min(rng.randint(300_000, 7_200_000), int(room * rng.uniform(0.1, 0.6)))
            buyer_ref = badges[-1][1] if t > badges[-1][0] else badges[0][1]
            payload: dict[str, object] = {"step": step, "buyer_ref": buyer_ref,
                                          "exhibitor_id": exhibitor}
            if rng.random() < 0.7:
                payload["cluster_id"] = booth.cluster_id
            payload.update(procurement_terms(rng, step, category, b.currency))
            source = {"channel": "gateway",
                      "device_id": "matchmaking" if matched else "crm-sync"}
            received = t + self._delay()
            doc = self._doc(PROCUREMENT, t, received, source, payload)
            out.append(Pending(PROCUREMENT, doc, t, received, b.id,
                               booth.cluster_id))
        return out


def _as_scan_version_2(rng: random.Random, doc: dict) -> None:
    """Turn a version 1 scan document into version 2 (``SimulationParams.scan_v2_share``)."""
    doc["schema_version"] = 2
    payload = doc["payload"]
    if rng.random() < 0.7:
        payload["scanner_id"] = payload.pop("scanner_device")
    if rng.random() < 0.6:
        payload["dwell_seconds"] = min(86_400, round(rng.lognormvariate(4.5, 0.8)))
