"""The fair simulator and the publisher, without services: small runs, recomputed truth."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from kafka.partitioner.default import DefaultPartitioner
from pydantic import ValidationError

import core.kafka
from core.settings import Settings
from producers.simulator import (
    Simulation,
    SimulationParams,
    restamp,
    simulate_fair,
    write_ground_truth,
)
from producers.simulator.publish import PublishError, publish
from schemas.deadletter import INPUT_REASONS, Reason
from schemas.events import EVENT_ADAPTER, EVENT_CLASSES, EVENT_TYPES, BoothScan
from schemas.reference import (
    CLUSTERS,
    CLUSTERS_BY_ID,
    booth_roster,
    booths_by_exhibitor,
    booths_by_id,
)
from schemas.registry import MAX_EVENT_BYTES, RAW_TOPIC_BY_EVENT_TYPE, key_of

N = 3000
SEED = 11
MAX_BYTES = MAX_EVENT_BYTES  # the simulator's default limit is the stream's default
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return simulate_fair(N, SEED)


@pytest.fixture(scope="module")
def chatty() -> Simulation:
    """Half the buyers write in: enough inquiries to see every kind of contact drift."""
    return simulate_fair(N, 5, params=SimulationParams(inquiry_rate=0.5))


def classify(topic_type: str, value: bytes) -> str | None:
    """The stream validator's rules, in order; None for a valid event."""
    if len(value) > MAX_BYTES:
        return Reason.OVERSIZED
    try:
        doc = json.loads(value.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return Reason.BAD_JSON
    if not isinstance(doc, dict):
        return Reason.NOT_AN_OBJECT
    if doc.get("event_type") != topic_type:
        return Reason.WRONG_TOPIC
    verdicts = []
    checks = ((EVENT_ADAPTER.validate_json, value),
              (EVENT_CLASSES[topic_type].model_validate, doc))
    for check, data in checks:
        try:  # JSON mode and Python mode (on the parsed dict) must agree
            event = check(data)
            verdicts.append(None)
        except ValidationError as exc:
            kinds = {e["type"] for e in exc.errors()}
            verdicts.append(Reason.MISSING_FIELD if kinds == {"missing"} else Reason.INVALID_FIELD)
    assert verdicts[0] == verdicts[1], verdicts
    if verdicts[0] is not None:
        return verdicts[0]
    payload = event.payload
    failed = []  # every reference that fails: exactly one, so check order cannot matter
    if isinstance(payload, BoothScan) and payload.booth_id not in booths_by_id():
        failed.append(Reason.UNKNOWN_BOOTH)
    cluster = getattr(payload, "cluster_id", None)
    if cluster is not None and cluster not in CLUSTERS_BY_ID:
        failed.append(Reason.UNKNOWN_CLUSTER)
    exhibitor = getattr(payload, "exhibitor_id", None)
    if exhibitor is not None and exhibitor not in booths_by_exhibitor():
        failed.append(Reason.UNKNOWN_EXHIBITOR)
    assert len(failed) <= 1, failed
    return failed[0] if failed else None


def event_cluster(doc: dict) -> str | None:
    p = doc["payload"]
    if doc["event_type"] == "booth_scan":
        return booths_by_id()[p["booth_id"]].cluster_id
    if doc["event_type"] == "online_inquiry":
        return p.get("cluster_id") or booths_by_exhibitor()[p["exhibitor_id"]].cluster_id
    if doc["event_type"] == "procurement_step":
        return booths_by_exhibitor()[p["exhibitor_id"]].cluster_id
    return None


def ts(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None
    return moment


def valid_docs(sim: Simulation) -> list[dict]:
    return [orjson.loads(m.value) for m in sim.messages if m.kind == "valid"]


# -- determinism and totals ------------------------------------------------------------------

def test_same_seed_same_bytes_and_truth(sim: Simulation) -> None:
    again = simulate_fair(N, SEED)
    assert again.messages == sim.messages
    assert orjson.dumps(again.ground_truth) == orjson.dumps(sim.ground_truth)
    other = simulate_fair(N, SEED + 1)
    assert [m.value for m in other.messages] != [m.value for m in sim.messages]


def test_totals(sim: Simulation) -> None:
    gt, kinds = sim.ground_truth, Counter(m.kind for m in sim.messages)
    assert gt["events_requested"] == N
    assert gt["events_produced"] == len(sim.messages)
    assert kinds["valid"] == gt["valid_messages"] == gt["expected_valid_events"] == N
    assert kinds["duplicate"] == gt["duplicates_resent"]
    assert kinds["malformed"] == gt["malformed_sent"] == sum(gt["malformed_by_reason"].values())
    scans = gt["expected_by_type"]["booth_scan"]
    assert 0.01 * scans < gt["duplicates_resent"] < 0.035 * scans
    assert 0.003 < gt["malformed_sent"] / len(sim.messages) < 0.008
    assert gt["expected_by_type"]["supplier_profile"] == len(booth_roster())
    assert set(gt["expected_by_cluster"]) == {c.id for c in CLUSTERS}


def test_tiny_and_empty_runs() -> None:
    assert simulate_fair(0, 1).messages == []
    for n in (1, 7, 60):
        s = simulate_fair(n, 2)
        assert sum(m.kind == "valid" for m in s.messages) == n


# -- every message is what its kind says -----------------------------------------------------

def test_valid_and_duplicate_messages_validate(sim: Simulation) -> None:
    ids: set[str] = set()
    for m in sim.messages:
        if m.kind == "malformed":
            continue
        event = EVENT_ADAPTER.validate_json(m.value)
        assert event.event_type == m.event_type
        assert m.event_type in RAW_TOPIC_BY_EVENT_TYPE
        assert classify(m.event_type, m.value) is None
        assert event.occurred_at.utcoffset() == timedelta(0)
        spec = RAW_TOPIC_BY_EVENT_TYPE[m.event_type]
        key_field = spec.key.fields[0]  # valid events all have their topic's key field
        source = event if key_field == "event_id" else event.payload
        assert m.key == getattr(source, key_field).encode() == key_of(orjson.loads(m.value))
        if m.kind == "valid":
            assert event.event_id not in ids
            ids.add(event.event_id)


def test_valid_scans_agree_with_their_booth(sim: Simulation) -> None:
    for doc in valid_docs(sim):
        p = doc["payload"]
        if doc["event_type"] == "booth_scan":
            booth = booths_by_id()[p["booth_id"]]
            assert p.get("cluster_id", booth.cluster_id) == booth.cluster_id
            assert p.get("exhibitor_id", booth.exhibitor_id) == booth.exhibitor_id
        elif doc["event_type"] in ("online_inquiry", "procurement_step") and p.get("exhibitor_id"):
            owner = booths_by_exhibitor()[p["exhibitor_id"]].cluster_id
            assert p.get("cluster_id", owner) == owner


def test_malformed_fail_for_their_reason(sim: Simulation) -> None:
    dead = sim.ground_truth["malformed"]
    assert {d["reason"] for d in dead} == {str(r) for r in INPUT_REASONS}
    positions = {d["position"] for d in dead}
    assert positions == {i for i, m in enumerate(sim.messages) if m.kind == "malformed"}
    for d in dead:
        m = sim.messages[d["position"]]
        assert m.event_type == d["event_type"] in RAW_TOPIC_BY_EVENT_TYPE
        assert classify(m.event_type, m.value) == d["reason"], (d, m.value[:300])
        if d["reason"] in (Reason.UNKNOWN_CLUSTER, Reason.UNKNOWN_EXHIBITOR):
            assert m.event_type in ("online_inquiry", "procurement_step")
        if d["reason"] == Reason.OVERSIZED:
            assert MAX_BYTES < len(m.value) < 1024 * 1024
            orjson.loads(m.value)
    assert Counter(d["reason"] for d in dead) == sim.ground_truth["malformed_by_reason"]
    assert all(n > 0 for n in sim.ground_truth["malformed_by_reason"].values())


# -- the truth, recomputed from the messages -------------------------------------------------

def test_expected_counts_recomputed(sim: Simulation) -> None:
    gt = sim.ground_truth
    docs = valid_docs(sim)
    assert Counter(d["event_type"] for d in docs) == {
        t: n for t, n in gt["expected_by_type"].items() if n
    }
    assert set(gt["expected_by_type"]) == set(EVENT_TYPES)
    column = {"booth_scan": 0, "online_inquiry": 1, "procurement_step": 2}
    per_cluster = {c.id: [0, 0, 0] for c in CLUSTERS}
    badges: dict[str, set[str]] = {c.id: set() for c in CLUSTERS}
    minutes: dict[str, dict[str, list[int]]] = {c.id: defaultdict(lambda: [0, 0, 0])
                                                for c in CLUSTERS}
    for d in docs:
        cluster = event_cluster(d)
        if cluster is None:
            continue
        col = column[d["event_type"]]
        per_cluster[cluster][col] += 1
        minute = ts(d["occurred_at"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
        minutes[cluster][minute][col] += 1
        if col == 0:
            badges[cluster].add(d["payload"]["badge_id"])
    for cid, expected in gt["expected_by_cluster"].items():
        assert expected == {"scans": per_cluster[cid][0], "inquiries": per_cluster[cid][1],
                            "procurement_steps": per_cluster[cid][2],
                            "distinct_badges": len(badges[cid])}
        assert gt["expected_by_cluster_minute"][cid] == dict(minutes[cid])


def test_buyer_of_record(sim: Simulation) -> None:
    gt = sim.ground_truth
    docs = valid_docs(sim)
    people = [d for d in docs if d["event_type"] != "supplier_profile"]
    assert set(gt["buyer_of_record"]) == {d["event_id"] for d in people}
    badge_owner = {d["payload"]["badge_id"]: gt["buyer_of_record"][d["event_id"]]
                   for d in docs if d["event_type"] == "buyer_registration"}
    for d in people:
        ref = d["payload"].get("badge_id") or d["payload"].get("buyer_ref")
        if ref is not None:
            assert badge_owner[ref] == gt["buyer_of_record"][d["event_id"]]
    assert gt["distinct_buyers"] == len(set(gt["buyer_of_record"].values()))
    records = {r["id"]: r for r in gt["buyer_records"]}
    for d in people:
        if d["event_type"] in ("buyer_registration", "online_inquiry"):
            r = records[d["event_id"]]
            assert r["buyer"] == gt["buyer_of_record"][d["event_id"]]
            assert r["email"] == d["payload"].get("email")
            assert r["wechat"] == d["payload"].get("wechat_id")
            assert r["full_name"] == d["payload"].get("full_name")


# -- time behaviour --------------------------------------------------------------------------

def test_publication_order_duplicates_and_late(sim: Simulation) -> None:
    first_seen: dict[bytes, int] = {}
    last_received = None
    for i, m in enumerate(sim.messages):
        if m.kind == "valid":
            received = ts(orjson.loads(m.value)["received_at"])
            assert last_received is None or received >= last_received
            last_received = received
            first_seen[m.value] = i
        elif m.kind == "duplicate":
            assert m.value in first_seen and first_seen[m.value] < i
    late_ids = set(sim.ground_truth["late_event_ids"])
    assert late_ids and len(late_ids) == sim.ground_truth["late_events"]
    for d in valid_docs(sim):
        delay = ts(d["received_at"]) - ts(d["occurred_at"])
        if d["event_id"] in late_ids:
            assert timedelta(hours=1) <= delay <= timedelta(hours=5)
        else:
            assert timedelta(0) <= delay <= timedelta(seconds=3)


def test_scans_follow_opening_hours_and_peaks(sim: Simulation) -> None:
    hours: Counter[int] = Counter()
    for d in valid_docs(sim):
        if d["event_type"] != "booth_scan":
            continue
        local = ts(d["occurred_at"]).astimezone(SHANGHAI)
        assert (9, 30) <= (local.hour, local.minute) < (18, 0)
        hours[local.hour] += 1
    assert hours[10] > hours[12] and hours[14] > hours[12]
    assert hours[10] > hours[17]


# -- identities ------------------------------------------------------------------------------

def _canonical_email(email: str) -> str:
    local, _, domain = email.lower().partition("@")
    return local.split("+")[0].replace(".", "") + "@" + domain


def test_inquiry_contacts_drift_like_real_people(chatty: Simulation) -> None:
    records = chatty.ground_truth["buyer_records"]
    registered: dict[str, dict] = {}
    for r in records:
        if r["source"] == "buyer_registration":
            registered.setdefault(r["buyer"], r)
    pairs = [(registered[r["buyer"]], r) for r in records
             if r["source"] == "online_inquiry" and r["buyer"] in registered]
    assert len(pairs) > 30
    mails = [(a["email"], b["email"]) for a, b in pairs if a["email"] and b["email"]]
    drifted = [(a, b) for a, b in mails if a != b and _canonical_email(a) == _canonical_email(b)]
    assert any(a.lower() == b.lower() for a, b in drifted), "case-only e-mail drift"
    assert any("+" in b for _, b in drifted), "plus-tag e-mail drift"
    assert any(a.replace(".", "") == b.replace(".", "") for a, b in drifted), "dots"
    assert any(a != b and _canonical_email(a) != _canonical_email(b) for a, b in mails)
    assert any(not a["full_name"].isascii() and b["full_name"] and b["full_name"].isascii()
               for a, b in pairs), "registered in hanzi, wrote in pinyin"

    def digits(p: str) -> str:
        return re.sub(r"\D", "", p)

    phones = [(a["phone"], b["phone"]) for a, b in pairs if a["phone"] and b["phone"]]
    assert any(a != b and digits(b).endswith(digits(a)[-8:]) for a, b in phones)
    assert any(b["wechat"] and not (b["email"] or b["phone"] or b["company"]) for _, b in pairs)
    assert any(a["company"] != b["company"] and b["company"] for a, b in pairs)


def test_distinct_buyers_share_a_name(sim: Simulation) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for r in sim.ground_truth["buyer_records"]:
        if r["source"] == "buyer_registration":
            owners[r["full_name"]].add(r["buyer"])
    shared = [name for name, who in owners.items() if len(who) > 1]
    assert any(not name.isascii() for name in shared)


# -- helpers of the contract -----------------------------------------------------------------

def test_restamp_keeps_the_event(sim: Simulation) -> None:
    original = next(m for m in sim.messages if m.event_type == "booth_scan")
    now = datetime(2026, 5, 1, 8, 0, 0, 250_000, tzinfo=UTC)
    stamped = orjson.loads(restamp(original.value, now))
    before = orjson.loads(original.value)
    assert stamped["event_id"] == before["event_id"]
    assert stamped["payload"] == before["payload"]
    assert ts(stamped["occurred_at"]) == ts(stamped["received_at"]) == now
    EVENT_ADAPTER.validate_json(restamp(original.value, now))
    with pytest.raises(ValueError):
        restamp(original.value, datetime(2026, 5, 1, 8, 0))  # noqa: DTZ001 - naive on purpose
    with pytest.raises(ValueError):
        restamp(b'{"event_id": "x"', now)


def test_write_ground_truth(sim: Simulation, tmp_path) -> None:
    path = tmp_path / "deep" / "truth.json"
    write_ground_truth(sim, path)
    assert json.loads(path.read_text()) == json.loads(orjson.dumps(sim.ground_truth))


# -- publish, against a fake producer --------------------------------------------------------

class _FakeFuture:
    def __init__(self) -> None:
        self.errbacks: list = []

    def add_errback(self, f):
        self.errbacks.append(f)
        return self


class _FakeProducer:
    def __init__(self, fail_at: int | None = None, raise_at: int | None = None) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, int | None]] = []
        self.futures: list[_FakeFuture] = []
        self.fail_at, self.raise_at, self.closed = fail_at, raise_at, False
        self.overrides: dict = {}

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(6))

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             partition: int | None = None) -> _FakeFuture:
        if len(self.sent) == self.raise_at:
            raise RuntimeError("buffer exhausted")
        self.sent.append((topic, key, value, partition))
        self.futures.append(_FakeFuture())
        return self.futures[-1]

    def flush(self, timeout: float | None = None) -> None:
        for i, fut in enumerate(self.futures):
            if i == self.fail_at:
                for f in fut.errbacks:
                    f(RuntimeError("broker said no"))

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def fake_kafka(monkeypatch):
    holder: dict[str, _FakeProducer] = {}

    def install(**kw) -> dict[str, _FakeProducer]:
        holder["producer"] = _FakeProducer(**kw)

        def factory(settings, **overrides):
            holder["producer"].overrides = overrides
            return holder["producer"]

        monkeypatch.setattr(core.kafka, "producer", factory)
        monkeypatch.setattr(core.kafka, "ensure_topics", lambda settings: [])
        return holder

    return install


def test_publish_sends_everything_in_order(sim: Simulation, fake_kafka) -> None:
    holder = fake_kafka()
    settings = Settings(namespace="simtest")
    seen: list[int] = []
    report = publish(sim.messages, settings, progress=seen.append)
    producer = holder["producer"]
    assert report.sent == len(sim.messages) == len(producer.sent)
    assert report.by_kind == dict(Counter(m.kind for m in sim.messages))
    assert seen == [5000 * k for k in range(1, len(sim.messages) // 5000 + 1)] + [report.sent]
    class Cluster:  # what kafka-python's default partitioner asks of the metadata
        def topics(self) -> set[str]:
            return {settings.topics.raw(t) for t in RAW_TOPIC_BY_EVENT_TYPE}

        def partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(6))

        available_partitions_for_topic = partitions_for_topic

    default = DefaultPartitioner()
    for m, (topic, key, value, partition) in zip(sim.messages, producer.sent, strict=True):
        assert topic == settings.topics.raw(m.event_type) and key == m.key and value == m.value
        assert partition == default.partition(topic, key, key, value, value, Cluster())
    assert producer.closed
    assert producer.overrides == {"linger_ms": settings.bulk_linger_ms,
                                  "batch_size": settings.bulk_batch_bytes}


def test_the_simulator_s_oversized_follow_its_limit() -> None:
    small = simulate_fair(400, 3, params=SimulationParams(max_message_bytes=2048,
                                                          malformed_rate=0.05))
    oversized = [m for d, m in zip(small.ground_truth["malformed"],
                                   (small.messages[d["position"]]
                                    for d in small.ground_truth["malformed"]), strict=True)
                 if d["reason"] == Reason.OVERSIZED]
    assert oversized and all(len(m.value) > 2048 for m in oversized)


def test_malformed_messages_are_keyed_by_the_registry_from_what_they_were_broken_from(
        sim: Simulation) -> None:
    keys = Counter()
    for d in sim.ground_truth["malformed"]:
        m = sim.messages[d["position"]]
        if d["event_id"] is not None and m.event_type == "online_inquiry":
            assert m.key == d["event_id"].encode()  # inquiries: the event id
        keys[m.key is not None] += 1
    assert keys[True] == len(sim.ground_truth["malformed"])  # none goes unkeyed


def test_publish_raises_on_failed_sends(sim: Simulation, fake_kafka) -> None:
    settings = Settings(namespace="simtest")
    holder = fake_kafka(fail_at=7)
    with pytest.raises(PublishError):
        publish(sim.messages[:50], settings)
    assert holder["producer"].closed
    holder = fake_kafka(raise_at=3)
    with pytest.raises(RuntimeError):
        publish(sim.messages[:50], settings)
    assert holder["producer"].closed


def test_publish_paces_and_restamps(sim: Simulation, fake_kafka) -> None:
    holder = fake_kafka()
    messages = sim.messages[:200] + [m for m in sim.messages if m.kind == "malformed"][:3]
    report = publish(messages, Settings(namespace="simtest"), rate=2000.0, restamp_now=True)
    assert report.elapsed_s >= 0.09
    assert holder["producer"].overrides == {}  # paced: the factory's low-latency settings
    for m, (_, _, value, _) in zip(messages, holder["producer"].sent, strict=True):
        if m.kind == "malformed":
            assert value == m.value
        else:
            assert orjson.loads(value)["event_id"] == orjson.loads(m.value)["event_id"]
            stamped = ts(orjson.loads(value)["occurred_at"])
            assert abs(stamped - datetime.now(UTC)) < timedelta(minutes=5)


def test_kafka_python_checksums_batches_in_c() -> None:
    """Without the crc32c package, publishing is CPU-bound on pure-Python checksums."""
    from kafka.record import util

    assert util.crc32c_c is not None
