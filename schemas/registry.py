"""The single registry of topics, event types, keys, limits and ClickHouse tables.

Every topic, table and event-type name is spelled here once and imported
elsewhere. Topic names are ``<namespace>.<suffix>`` so that test runs and
benchmarks can live side by side on one broker; the Faust app id is
``<namespace>-streams`` and is schema too (it names changelog topics).

The registry also decides how every topic is keyed (:class:`MessageKey`): producers
compute a raw event's key with :func:`key_of`, never by hand, and each derived topic
declares the key its stream worker really sends with (checked against the workers'
output by ``tests/integration/test_topic_keys.py``).

Raw messages carry one event, or a batch of events of their topic's type as NDJSON (the
wire format: :data:`RAW_VALUE_FORMAT`; ``streams.lines`` splits, ARCHITECTURE.md "Batched
messages"). An event's lineage is ``topic[partition]@offset`` and its line in the message
(``source_line``, 0 for a single event; dead letters also ``origin_line``: migration 018).
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from schemas.events import EventType

# Every topic of the pipeline has this many partitions: the unit of parallelism of the
# stream workers (at most this many worker processes share the work) and of the Faust
# tables' changelogs. Changing it for existing topics is a migration (keys move).
RAW_PARTITIONS = 6

# -- size limits (bytes): the defaults of core.settings.Settings, and the simulator's --------
# A raw message larger than this is dead-lettered as "oversized" (Settings.max_message_bytes),
# whole: the limit is a message's, a batch's too (its lines are never judged then). A chosen
# bound, not a Kafka one: valid events are at most a few KiB (the schema caps every text
# field), so 64 KiB is ample headroom, about 50-100 events in a batch, while keeping rows
# and batches small.
MAX_EVENT_BYTES = 64 * 1024
# The largest Kafka message anywhere (Settings.kafka_wire_max_bytes): the local brokers'
# message.max.bytes, every producer's max_request_size and the floor of every consumer's
# fetch sizes. Above MAX_EVENT_BYTES by far on purpose: an oversized event must still
# reach the workers to become a dead letter, and the workers' newline-joined output
# blocks (up to worker_batch_max rows) must fit too.
KAFKA_WIRE_MAX_BYTES = 4 * 1024 * 1024


class KeyRule(StrEnum):
    """How the records of a topic are keyed and partitioned."""

    FIELD = "field"  # key = the first of ``fields`` the record has; murmur2(key) partitions
    NONE = "none"  # no key: the producer spreads the records over the partitions
    PARTITION = "partition"  # no key, an explicit partition: crc32(first field) % partitions


@dataclass(frozen=True)
class MessageKey:
    """A topic's key declaration: a rule and the fields it reads, in order of preference.

    Fields are looked up in the record's ``payload`` object first, then at its top level
    (the envelope of a raw event, or the row of a derived topic). A field counts when its
    value is a non-empty string or an integer; the next field is the fallback.
    """

    rule: KeyRule
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.rule is KeyRule.NONE:
            return "none"
        chain = ", else ".join(self.fields)
        return f"crc32({chain}) % partitions" if self.rule is KeyRule.PARTITION else chain

    def value(self, record: Mapping[str, object]) -> str | None:
        """The first of ``fields`` that ``record`` has, as text; None if it has none."""
        payload = record.get("payload")
        for name in self.fields:
            for source in (payload, record):
                if isinstance(source, Mapping):
                    found = _key_text(source.get(name))
                    if found is not None:
                        return found
        return None

    def key(self, record: Mapping[str, object]) -> bytes | None:
        """The message key of ``record`` (UTF-8), or None: sent without a key."""
        if self.rule is not KeyRule.FIELD:
            return None
        text = self.value(record)
        return None if text is None else text.encode("utf-8")

    def partition(self, record: Mapping[str, object], partitions: int) -> int | None:
        """The explicit partition of ``record`` (rule PARTITION), else None: the producer's
        partitioner decides (murmur2 of the key for kafka-python and the Java client)."""
        if self.rule is not KeyRule.PARTITION:
            return None
        text = self.value(record)
        return None if text is None else crc32_partition(text, partitions)


def _key_text(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def keyed_by(*fields: str) -> MessageKey:
    """Keyed by the first of ``fields`` the record has (later ones are fallbacks)."""
    return MessageKey(KeyRule.FIELD, fields)


def partitioned_by(*fields: str) -> MessageKey:
    """Sent without a key to partition ``crc32(first field present) % partitions``."""
    return MessageKey(KeyRule.PARTITION, fields)


UNKEYED = MessageKey(KeyRule.NONE)


def crc32_partition(text: str, partitions: int) -> int:
    """The project's own partitioner (zlib CRC32 of the UTF-8 text), the same in every
    client; see LEAD_CONTRIBUTIONS for why it exists."""
    return zlib.crc32(text.encode("utf-8")) % partitions


@dataclass(frozen=True)
class TopicSpec:
    """One Kafka topic: what it carries, how it is keyed, where its bad input goes.

    ``value_schema`` is the :class:`EventType` of a raw topic (each record one JSON event of
    that type, or a batch of them: :data:`RAW_VALUE_FORMAT`) and a description for a
    derived topic.
    """

    suffix: str
    partitions: int
    key: MessageKey
    value_schema: str
    dead_letter: str | None  # suffix of the dead-letter topic, None for derived topics

    @property
    def event_type(self) -> EventType | None:
        """The event type a raw topic carries; None for a derived topic."""
        return self.value_schema if isinstance(self.value_schema, EventType) else None


@dataclass(frozen=True)
class TableSpec:
    """One ClickHouse table or view, created by the numbered migrations."""

    name: str
    columns: tuple[str, ...]
    purpose: str
    is_view: bool = False
    # Columns a row carries only when it has a value (a Nullable column: NULL otherwise; a
    # line column: 0 otherwise, its type's default). A row without them is stored by a store
    # whose migration has not added them yet, which is what lets a new optional field roll
    # out while that migration is pending (ARCHITECTURE "Schema evolution").
    optional: tuple[str, ...] = ()


DEAD_LETTERS_SUFFIX = "deadletters"
# Kafka header a replay sets on each message it re-publishes: the coordinates where the
# message was first read, as ``topic[partition]@offset`` (UTF-8), with ``#line`` when one
# line of a batch is re-sent alone (``deadletters retry``); without ``#line`` each line of
# the message keeps its own index. A dead letter is stored once per origin
# (dead_letters.origin_*, origin_line too), so a replayed message that fails again replaces
# its dead letter instead of adding one; a message without the header is its own origin.
ORIGIN_HEADER = "leadloom-origin"

# The value of a raw message (streams.lines): one JSON object (one event, line 0), or NDJSON:
# JSON objects of the topic's event type separated by "\n" (a trailing newline allowed,
# blank lines ignored), each line an event validated alone with its 0-based line index.
# A JSON array is not a batch (it is not_an_object, as before). max_message_bytes bounds the
# whole message. Producers batch per destination partition (the partition of each event's
# key_of), so keyed order holds: leads count event ids and tables deduplicate on event_id,
# so counts do not depend on the partition a batch lands on.
RAW_VALUE_FORMAT = "one JSON event, or NDJSON: events of the topic's type, one per line"

# Raw topics are keyed by the badge id where the event has one, so that one buyer's
# scans stay ordered on one partition and a scanner's resend (same event_id, same
# badge) lands on the partition that already saw it. An event without its key field
# (malformed input, still published so that it dead-letters) falls back to its event id,
# and one without either goes unkeyed. Inquiries have no badge (a web form): event id.
RAW_REGISTRATIONS = TopicSpec(
    "raw.registrations", RAW_PARTITIONS, keyed_by("badge_id", "event_id"),
    EventType.BUYER_REGISTRATION, DEAD_LETTERS_SUFFIX,
)
RAW_SCANS = TopicSpec(
    "raw.scans", RAW_PARTITIONS, keyed_by("badge_id", "event_id"), EventType.BOOTH_SCAN,
    DEAD_LETTERS_SUFFIX,
)
RAW_INQUIRIES = TopicSpec(
    "raw.inquiries", RAW_PARTITIONS, keyed_by("event_id"), EventType.ONLINE_INQUIRY,
    DEAD_LETTERS_SUFFIX,
)
RAW_PROCUREMENT = TopicSpec(
    "raw.procurement", RAW_PARTITIONS, keyed_by("buyer_ref", "event_id"),
    EventType.PROCUREMENT_STEP, DEAD_LETTERS_SUFFIX,
)
RAW_PROFILES = TopicSpec(
    "raw.profiles", RAW_PARTITIONS, keyed_by("exhibitor_id", "event_id"),
    EventType.SUPPLIER_PROFILE, DEAD_LETTERS_SUFFIX,
)
# Derived topics carry newline-joined blocks of rows (one record per table per worker
# batch), so most are sent without a key: nothing downstream depends on their partition
# (the sink deduplicates on the rows' own keys).
VALID_EVENTS = TopicSpec(
    "events.valid", RAW_PARTITIONS, UNKEYED, "rows of a raw event table (JSON lines; header "
    "'table' names which)", None
)
# Leads are aggregated after a repartition by the project's own hash (the badge, else the
# event id): raw partitions depend on whichever partitioner a producer used (librdkafka's
# CRC32 and the Java client's murmur2 send one badge to different partitions), so counts
# that relied on "one badge, one raw partition" were exact only for one kind of client.
LEAD_CONTRIBUTIONS = TopicSpec(
    "leads.contributions", RAW_PARTITIONS, partitioned_by("badge_id", "event_id"),
    "lead contributions (JSON lines: event_id, cluster_id, minute, topic, kind, badge_id)",
    None
)
LEADS_MINUTE = TopicSpec(
    "leads.minute", RAW_PARTITIONS, UNKEYED, "rows of leads_minute_parts (JSON lines)", None
)
DEAD_LETTERS = TopicSpec(
    DEAD_LETTERS_SUFFIX, RAW_PARTITIONS, UNKEYED, "rows of dead_letters (JSON lines)", None
)
# Identity is resolved per fair: every buyer-bearing event of one fair goes to one
# partition of identity.records (keyed by fair_id), so all its identifiers meet in one
# ordered log, whichever raw partition they came from (ARCHITECTURE.md, "Buyer identity").
IDENTITY_RECORDS = TopicSpec(
    "identity.records", RAW_PARTITIONS, keyed_by("fair_id"),
    "identity records of one fair (JSON lines)", None
)
BUYER_EVENTS = TopicSpec(
    "buyers.events", RAW_PARTITIONS, UNKEYED, "rows of buyer_events (JSON lines)", None
)
BUYER_MERGES = TopicSpec(
    "buyers.merges", RAW_PARTITIONS, UNKEYED, "rows of buyer_merges (JSON lines)", None
)
BUYER_STATE = TopicSpec(
    "buyers.state", RAW_PARTITIONS, UNKEYED,
    "rows of buyers or buyer_aliases (JSON lines; header 'table' names which)", None
)
# Matchmaking is per fair too: each fair's supplier profiles and online inquiries meet in one
# ordered partition, where the matchmaking agent keeps the fair's supplier index.
MATCH_REQUESTS = TopicSpec(
    "matchmaking.requests", RAW_PARTITIONS, keyed_by("fair_id"),
    "supplier profiles and online inquiries of one fair (JSON lines)", None
)
MATCHES = TopicSpec(
    "matches", RAW_PARTITIONS, UNKEYED, "rows of matches (JSON lines)", None
)
# One alert per message, keyed by its cluster: a consumer that notifies people reads the
# topic; the sink stores the same row in surge_alerts.
SURGE_ALERTS = TopicSpec(
    "alerts.surges", RAW_PARTITIONS, keyed_by("cluster_id"),
    "surge alerts (one surge_alerts row as JSON per message)", None
)
# The stream workers' own figures (events consumed per raw topic, resolver merges), one
# block of pipeline_metrics rows per worker every few seconds; the sink stores them.
METRICS = TopicSpec(
    "metrics", RAW_PARTITIONS, UNKEYED, "rows of pipeline_metrics (JSON lines)", None
)

# Rows of the ops tables (the replay audit, dead-letter retries) from the ops commands, one
# block per table per command run (header "table"); the sink stores them, so an ops command
# needs no write access to the store (the embedded store has one writer, its owner).
OPS_RECORDS = TopicSpec(
    "ops", RAW_PARTITIONS, UNKEYED,
    "rows of the ops tables (JSON lines; header 'table' names which)", None
)

RAW_TOPICS: tuple[TopicSpec, ...] = (
    RAW_REGISTRATIONS, RAW_SCANS, RAW_INQUIRIES, RAW_PROCUREMENT, RAW_PROFILES
)
DERIVED_TOPICS: tuple[TopicSpec, ...] = (
    VALID_EVENTS, LEAD_CONTRIBUTIONS, LEADS_MINUTE, DEAD_LETTERS, IDENTITY_RECORDS,
    BUYER_EVENTS, BUYER_MERGES, BUYER_STATE, MATCH_REQUESTS, MATCHES, SURGE_ALERTS, METRICS,
    OPS_RECORDS,
)
# What the sink stores; the rest of the derived topics are read by stream workers.
SINK_TOPICS: tuple[TopicSpec, ...] = (
    VALID_EVENTS, LEADS_MINUTE, DEAD_LETTERS, BUYER_EVENTS, BUYER_MERGES, BUYER_STATE,
    MATCHES, SURGE_ALERTS, METRICS, OPS_RECORDS,
)
ALL_TOPICS: tuple[TopicSpec, ...] = RAW_TOPICS + DERIVED_TOPICS

RAW_TOPIC_BY_EVENT_TYPE: dict[str, TopicSpec] = {t.value_schema: t for t in RAW_TOPICS}
# The key of an event whose type names no raw topic (malformed input): its event id.
_UNKNOWN_TYPE_KEY = keyed_by("event_id")


def key_of(event: Mapping[str, object]) -> bytes | None:
    """The message key of a raw event (a decoded JSON object), as its topic declares.

    The key field is read from ``payload`` first, then from the envelope; without it (or
    with an ``event_type`` that names no raw topic) the key is the ``event_id``, and
    without that too the event goes unkeyed (None). Never raises: malformed events are
    published all the same, to become dead letters downstream.
    """
    event_type = event.get("event_type")
    spec = RAW_TOPIC_BY_EVENT_TYPE.get(event_type) if isinstance(event_type, str) else None
    return (spec.key if spec is not None else _UNKNOWN_TYPE_KEY).key(event)

# Faust state: names are schema (they become changelog topic names).
LEADS_STATE_TABLE = "leads_minute_state"
# The identity resolver's applied records, in order: key "<fair_id>|<seq>" (see
# streams/identity/stream.py). Replaying it rebuilds the resolver exactly.
IDENTITY_LOG_TABLE = "buyer_identity_log"
# The matchmaking agent's state per fair: the latest profile of each supplier and the
# result of each inquiry matched (streams/matchmaking.py).
MATCHMAKING_STATE_TABLE = "matchmaking_state"
FAUST_TABLES = (LEADS_STATE_TABLE, IDENTITY_LOG_TABLE, MATCHMAKING_STATE_TABLE)
# (each has RAW_PARTITIONS partitions)


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's name for a table's changelog topic (compacted)."""
    return f"{app_id}-{table}-changelog"

_ENVELOPE_COLUMNS = (
    "event_id", "event_type", "fair_id", "occurred_at", "received_at",
    "source_channel", "source_device",
)
# source_line (migration 018): the event's line in a batched message; rows carry it only
# when not 0 (optional), so single-event rows are stored while 018 is pending.
_SOURCE_COLUMNS = ("source_topic", "source_partition", "source_offset", "source_line",
                   "ingested_at")
_SOURCE_OPTIONAL = ("source_line",)
_CONTACT_COLUMNS = (
    "consent", "name_masked", "email_hash", "phone_hash", "wechat_hash",
    "company", "country", "province", "city",
)

REGISTRATIONS = TableSpec(
    "registrations",
    _ENVELOPE_COLUMNS + ("badge_id", "buyer_type") + _CONTACT_COLUMNS + _SOURCE_COLUMNS,
    "buyer registrations; personal data hashed/masked, only with consent",
    optional=_SOURCE_OPTIONAL,
)
SCANS = TableSpec(
    "scans",
    _ENVELOPE_COLUMNS
    + ("badge_id", "booth_id", "exhibitor_id", "cluster_id", "pavilion_id",
       "scanner_device", "staff_id", "method", "rating", "note", "dwell_seconds")
    + _SOURCE_COLUMNS,
    "booth badge scans, enriched with exhibitor, cluster and pavilion from the booth"
    " (dwell_seconds: booth_scan version 2, migration 017)",
    optional=("dwell_seconds",) + _SOURCE_OPTIONAL,
)
INQUIRIES = TableSpec(
    "inquiries",
    _ENVELOPE_COLUMNS
    + ("cluster_id", "exhibitor_id", "pavilion_id", "categories", "quantity", "budget",
       "currency", "lead_time_days", "language", "channel")
    + _CONTACT_COLUMNS + _SOURCE_COLUMNS,
    "online inquiries (web, WeChat), target cluster resolved from the exhibitor",
    optional=_SOURCE_OPTIONAL,
)
PROCUREMENT_STEPS = TableSpec(
    "procurement_steps",
    _ENVELOPE_COLUMNS
    + ("step", "buyer_ref", "exhibitor_id", "cluster_id", "pavilion_id", "category",
       "quantity", "value", "currency")
    + _SOURCE_COLUMNS,
    "sample/quote requests, cooperation intents and purchase orders",
    optional=_SOURCE_OPTIONAL,
)
SUPPLIER_PROFILES = TableSpec(
    "supplier_profiles",
    _ENVELOPE_COLUMNS
    + ("exhibitor_id", "cluster_id", "pavilion_id", "categories", "crafts",
       "monthly_capacity", "moq", "lead_time_days", "certifications")
    + _SOURCE_COLUMNS,
    "supplier capability profiles",
    optional=_SOURCE_OPTIONAL,
)
DEAD_LETTER_TABLE = TableSpec(
    "dead_letters",
    ("source_topic", "source_partition", "source_offset", "source_line", "origin_topic",
     "origin_partition", "origin_offset", "origin_line", "reason", "detail", "event_id",
     "raw_size", "raw_base64", "raw_sha256", "failed_at", "ingested_at"),
    "every message (or line of a batched message) that failed decoding or validation, with"
    " its reason and raw bytes (a bounded prefix, the full size and a SHA-256); one row per"
    " origin (first reading, its line: migration 018)",
    optional=("source_line", "origin_line"),
)
LEADS_MINUTE_PARTS = TableSpec(
    "leads_minute_parts",
    ("cluster_id", "minute", "source_topic", "source_partition", "scans", "inquiries",
     "procurement_steps", "distinct_badges", "version", "updated_at"),
    "latest Faust aggregate per (cluster, minute, source partition); version only grows",
)
LEADS_PER_CLUSTER_MINUTE = TableSpec(
    "leads_per_cluster_minute",
    ("cluster_id", "minute", "scans", "inquiries", "procurement_steps", "distinct_badges"),
    "view: leads per cluster per event-time minute, summed over source partitions",
    is_view=True,
)
BUYER_EVENTS_TABLE = TableSpec(
    "buyer_events",
    ("event_id", "event_type", "fair_id", "occurred_at", "cluster_id", "exhibitor_id",
     "booth_id", "alias", "buyer_id", "resolved_at", "ingested_at"),
    "every buyer-bearing event with its identity record (alias) and buyer at resolution",
)
BUYER_ALIASES = TableSpec(
    "buyer_aliases",
    ("fair_id", "alias", "buyer_id", "version", "updated_at"),
    "identity record -> canonical buyer; the newest version follows every merge",
)
BUYER_MERGES_TABLE = TableSpec(
    "buyer_merges",
    ("fair_id", "survivor", "absorbed", "record_id", "evidence", "score", "merged_at",
     "ingested_at"),
    "each merge of two buyers: survivor, absorbed, the record that linked them, evidence",
)
BUYERS = TableSpec(
    "buyers",
    ("fair_id", "buyer_id", "merged_into", "records", "badges", "consent", "name_masked",
     "email_hashes", "phone_hashes", "wechat_hashes", "company", "country", "city",
     "first_seen", "last_seen", "version", "updated_at"),
    "latest profile per buyer; personal data hashed/masked, only with consent",
)
BUYER_ALIAS_CURRENT = TableSpec(
    "buyer_alias_current", ("fair_id", "alias", "buyer_id"),
    "view: the current canonical buyer of every identity record", is_view=True,
)
BUYER_EVENTS_RESOLVED = TableSpec(
    "buyer_events_resolved",
    ("event_id", "event_type", "fair_id", "occurred_at", "cluster_id", "exhibitor_id",
     "booth_id", "buyer_id"),
    "view: buyer events with the buyer they belong to now (merges applied)", is_view=True,
)
UNIQUE_BUYERS_BY_CLUSTER = TableSpec(
    "unique_buyers_by_cluster", ("fair_id", "cluster_id", "buyers", "events"),
    "view: resolved unique buyers per cluster", is_view=True,
)
UNIQUE_BUYERS_BY_BOOTH = TableSpec(
    "unique_buyers_by_booth", ("fair_id", "cluster_id", "booth_id", "buyers", "events"),
    "view: resolved unique buyers per booth", is_view=True,
)
UNIQUE_BUYERS_BY_HOUR = TableSpec(
    "unique_buyers_by_hour", ("fair_id", "cluster_id", "hour", "buyers", "events"),
    "view: resolved unique buyers per cluster per event-time hour", is_view=True,
)
UNIQUE_BUYERS_TOTAL = TableSpec(
    "unique_buyers_total", ("fair_id", "buyers", "aliases"),
    "view: resolved unique buyers of the fair", is_view=True,
)
SCHEMA_MIGRATIONS = TableSpec(
    "schema_migrations", ("version", "name", "applied_at"), "applied migration files"
)
CURRENCY_RATES = TableSpec(
    "currency_rates", ("currency", "valid_from", "cny_per_unit", "source", "loaded_at"),
    "CNY per unit of a currency from valid_from on (shipped reference rates, then the"
    " operator's `leadloom rates load`); newest load wins per (currency, valid_from)",
)
CNY_RATE_CURRENT = TableSpec(
    "cny_rate_current", ("currency", "cny_per_unit", "valid_from"),
    "view: the rate of each currency in force now", is_view=True,
)
MATCHES_TABLE = TableSpec(
    "matches",
    ("inquiry_event_id", "rank", "fair_id", "matched_at", "exhibitor_id", "cluster_id",
     "score", "explanation", "profile_event_id", "made_at", "ingested_at"),
    "the top suppliers recommended for each online inquiry, with the reasons",
)
SURGE_ALERTS_TABLE = TableSpec(
    "surge_alerts",
    ("fair_id", "cluster_id", "surge_start", "window_end", "events", "expected",
     "momentum_score", "value_cny", "late", "evidence", "detected_at", "ingested_at"),
    "one row per surge of a cluster's procurement momentum, with its evidence",
)
PIPELINE_METRICS = TableSpec(
    "pipeline_metrics",
    ("at", "source", "metric", "topic", "consumer_group", "partition", "value", "interval_s",
     "ingested_at"),
    "the pipeline's own figures (Metric): counts per interval from the stream workers,"
    " insert times and end-to-end latency from the sink, consumer lag samples",
)


class Metric(StrEnum):
    """The names in ``pipeline_metrics.metric`` (dashboards read exactly these)."""

    # a worker's events consumed from one raw topic (topic) in interval_s (each line of a
    # batched message counts)
    EVENTS_CONSUMED = "events_consumed"
    # merges the identity resolver made in interval_s
    RESOLVER_MERGES = "resolver_merges"
    # one row per insert batch the sink stored: topic = the table, value = insert ms
    SINK_BATCH_MS = "sink_batch_ms"
    # per sink metrics interval: event received at the edge (received_at) -> stored, ms
    E2E_LATENCY_P50_MS = "e2e_latency_p50_ms"
    E2E_LATENCY_P99_MS = "e2e_latency_p99_ms"
    # a sample per (consumer_group, topic, partition): messages not committed yet
    CONSUMER_LAG = "consumer_lag"


class MetricSource(StrEnum):
    """``pipeline_metrics.source`` of the store owner's writers; workers are
    :func:`worker_source`."""

    SINK = "sink"
    LAG_SAMPLER = "lag-sampler"


def worker_source(index: int | str) -> str:
    """``pipeline_metrics.source`` of stream worker ``index`` (``worker-0``, ...)."""
    return f"worker-{index}"


SEASON_BASELINE = TableSpec(
    "season_baseline",
    ("season", "pavilion_id", "cluster_id", "professional_buyers", "source", "loaded_at"),
    "a previous season's professional buyers per pavilion and cluster (leadloom season"
    " import)",
)

# -- lead intelligence views (migration 011; ARCHITECTURE.md "Lead intelligence") ---------
_SIGNAL_COLUMNS = (
    "scans", "scan_days", "ratings", "has_inquiry", "inquiry_quantity", "inquiry_budget_cny",
    "inquiry_lead_time_days", "furthest_step", "last_activity",
)
LEAD_SCORES_EXHIBITOR = TableSpec(
    "lead_scores_exhibitor",
    ("fair_id", "buyer_id", "exhibitor_id", "cluster_id") + _SIGNAL_COLUMNS
    + ("score", "tier"),
    "view: the lead score and tier of every (resolved buyer, exhibitor) pair", is_view=True,
)
LEAD_SCORES_CLUSTER = TableSpec(
    "lead_scores_cluster",
    ("fair_id", "buyer_id", "cluster_id") + _SIGNAL_COLUMNS + ("score", "tier"),
    "view: the lead score and tier of every (resolved buyer, cluster) pair", is_view=True,
)
_FUNNEL_COLUMNS = ("stage", "stage_order", "buyers", "pairs", "events", "value_cny",
                   "conversion")
FUNNEL_BY_CLUSTER = TableSpec(
    "funnel_by_cluster", ("fair_id", "cluster_id") + _FUNNEL_COLUMNS,
    "view: the procurement funnel per cluster (resolved buyers, pairs, events, CNY)",
    is_view=True,
)
FUNNEL_BY_EXHIBITOR = TableSpec(
    "funnel_by_exhibitor", ("fair_id", "cluster_id", "exhibitor_id") + _FUNNEL_COLUMNS,
    "view: the procurement funnel per exhibitor", is_view=True,
)
FUNNEL_BY_CATEGORY = TableSpec(
    "funnel_by_category", ("fair_id", "category") + _FUNNEL_COLUMNS,
    "view: the procurement funnel per product category", is_view=True,
)
_MOMENTUM_COLUMNS = ("window_start", "events", "scans", "inquiries", "procurement_steps",
                     "value_cny", "velocity", "acceleration", "expected", "momentum_score")
MOMENTUM_CLUSTER_5M = TableSpec(
    "momentum_cluster_5m", ("fair_id", "cluster_id") + _MOMENTUM_COLUMNS
    + ("surge", "surge_start"),
    "view: procurement momentum per cluster and 5-minute event-time window, surges flagged",
    is_view=True,
)
MOMENTUM_CLUSTER_HOUR = TableSpec(
    "momentum_cluster_hour", ("fair_id", "cluster_id") + _MOMENTUM_COLUMNS,
    "view: procurement momentum per cluster and event-time hour", is_view=True,
)
MOMENTUM_CATEGORY_5M = TableSpec(
    "momentum_category_5m", ("fair_id", "category") + _MOMENTUM_COLUMNS,
    "view: procurement momentum per category and 5-minute window", is_view=True,
)
MOMENTUM_CATEGORY_HOUR = TableSpec(
    "momentum_category_hour", ("fair_id", "category") + _MOMENTUM_COLUMNS,
    "view: procurement momentum per category and hour", is_view=True,
)
MOMENTUM_RANKING = TableSpec(
    "momentum_ranking",
    ("fair_id", "window_start", "rank", "cluster_id", "momentum_score", "events", "expected"),
    "view: clusters ranked by momentum in the latest complete 5-minute window", is_view=True,
)
MATCH_OUTCOMES = TableSpec(
    "match_outcomes",
    ("fair_id", "inquiry_event_id", "rank", "exhibitor_id", "cluster_id", "buyer_id",
     "matched_at", "visited", "sampled", "intent", "ordered", "hours_to_intent",
     "order_value_cny"),
    "view: every match with what followed between its buyer and supplier", is_view=True,
)
MATCHMAKING_KPIS = TableSpec(
    "matchmaking_kpis",
    ("fair_id", "introduced_by", "pairs", "visited", "sampled", "intent", "ordered",
     "visit_rate", "sample_rate", "intent_rate", "order_rate", "median_hours_to_intent",
     "order_value_cny"),
    "view: match credit: pairs a match introduced vs pairs none did, side by side",
    is_view=True,
)
SEASON_COMPARISON = TableSpec(
    "season_comparison",
    ("fair_id", "pavilion_id", "cluster_id", "professional_buyers", "previous_season",
     "previous_professional_buyers", "change_pct"),
    "view: professional buyers per pavilion and cluster vs the previous season",
    is_view=True,
)
INTELLIGENCE_VIEWS: tuple[TableSpec, ...] = (
    LEAD_SCORES_EXHIBITOR, LEAD_SCORES_CLUSTER, FUNNEL_BY_CLUSTER, FUNNEL_BY_EXHIBITOR,
    FUNNEL_BY_CATEGORY, MOMENTUM_CLUSTER_5M, MOMENTUM_CLUSTER_HOUR, MOMENTUM_CATEGORY_5M,
    MOMENTUM_CATEGORY_HOUR, MOMENTUM_RANKING, MATCH_OUTCOMES, MATCHMAKING_KPIS,
    SEASON_COMPARISON,
)

# A delegation's buyers (migration 014): a snapshot like the intelligence views' (a
# ``_live`` view, this table, a ``__next`` twin), refreshed with them (core/snapshots.py).
DELEGATION_BUYERS = TableSpec(
    "delegation_buyers",
    ("fair_id", "cluster_id", "buyer_id", "scans", "inquiries", "first_activity",
     "last_activity", "name_masked", "company", "country", "city", "buyer_type"),
    "view: the resolved buyers who scanned at or wrote to each cluster, masked profile only"
    " (what a delegation may know of its buyers)",
    is_view=True,
)

# Replay (migration 015): every raw message as delivered, and the ops commands' audit.
RAW_ARCHIVE = TableSpec(
    "raw_archive",
    ("topic", "partition", "offset", "kafka_timestamp", "key_base64", "value", "value_base64",
     "headers", "event_id", "event_type", "occurred_at", "ingested_at"),
    "every message of the raw topics as the broker delivered it (value as UTF-8 text or"
    " base64, key and headers as base64): what a rebuild reads when Kafka no longer has it",
)
REPLAY_AUDIT = TableSpec(
    "replay_audit",
    ("audit_id", "command", "who", "host", "started_at", "finished_at", "dry_run", "params",
     "result", "detail", "counts", "ingested_at"),
    "one row per run of an ops command that changes or rebuilds state: who, when, what,"
    " the result",
)

# Dead-letter triage (migration 016): what each `leadloom deadletters retry` did with each
# dead letter it selected (keyed as dead_letters is, plus the run).
DEAD_LETTER_RETRIES = TableSpec(
    "dead_letter_retries",
    ("origin_topic", "origin_partition", "origin_offset", "origin_line", "raw_sha256",
     "retried_at", "audit_id", "outcome", "reason", "published_to", "ingested_at"),
    "one row per dead letter per retry: republished (where to), still invalid (why now) or"
    " not retryable (why)",
    optional=("origin_line",),
)


class RetryOutcome(StrEnum):
    """``dead_letter_retries.outcome`` (dashboards and the triage commands read these)."""

    REPUBLISHED = "republished"
    STILL_INVALID = "still_invalid"
    NOT_RETRYABLE = "not_retryable"




class OpsCommand(StrEnum):
    """The ops commands that write a ``replay_audit`` row (its ``command``)."""

    REPLAY_REPROCESS = "replay reprocess"
    REPLAY_REPUBLISH = "replay republish"
    DEADLETTERS_RETRY = "deadletters retry"
    GROUPS_RESET = "groups reset"


class AuditResult(StrEnum):
    """How an audited ops command ended (``replay_audit.result``)."""

    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    REFUSED = "refused"


TABLE_BY_EVENT_TYPE: dict[str, TableSpec] = {
    EventType.BUYER_REGISTRATION: REGISTRATIONS,
    EventType.BOOTH_SCAN: SCANS,
    EventType.ONLINE_INQUIRY: INQUIRIES,
    EventType.PROCUREMENT_STEP: PROCUREMENT_STEPS,
    EventType.SUPPLIER_PROFILE: SUPPLIER_PROFILES,
}
EVENT_TABLES: tuple[TableSpec, ...] = tuple(TABLE_BY_EVENT_TYPE.values())
ALL_TABLES: tuple[TableSpec, ...] = EVENT_TABLES + (
    DEAD_LETTER_TABLE, LEADS_MINUTE_PARTS, LEADS_PER_CLUSTER_MINUTE,
    BUYER_EVENTS_TABLE, BUYER_ALIASES, BUYER_MERGES_TABLE, BUYERS, BUYER_ALIAS_CURRENT,
    BUYER_EVENTS_RESOLVED, UNIQUE_BUYERS_BY_CLUSTER, UNIQUE_BUYERS_BY_BOOTH,
    UNIQUE_BUYERS_BY_HOUR, UNIQUE_BUYERS_TOTAL, SCHEMA_MIGRATIONS, CURRENCY_RATES,
    CNY_RATE_CURRENT, MATCHES_TABLE, SURGE_ALERTS_TABLE, SEASON_BASELINE, PIPELINE_METRICS,
) + INTELLIGENCE_VIEWS + (DELEGATION_BUYERS, RAW_ARCHIVE, REPLAY_AUDIT,
                         DEAD_LETTER_RETRIES)
TABLES_BY_NAME: dict[str, TableSpec] = {t.name: t for t in ALL_TABLES}


class TopicNames:
    """Full topic names for one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def name(self, spec: TopicSpec) -> str:
        return f"{self.namespace}.{spec.suffix}"

    def raw(self, event_type: str) -> str:
        return self.name(RAW_TOPIC_BY_EVENT_TYPE[event_type])

    @property
    def dead_letters(self) -> str:
        return self.name(DEAD_LETTERS)

    @property
    def valid_events(self) -> str:
        return self.name(VALID_EVENTS)

    @property
    def lead_contributions(self) -> str:
        return self.name(LEAD_CONTRIBUTIONS)

    @property
    def leads_minute(self) -> str:
        return self.name(LEADS_MINUTE)

    @property
    def identity_records(self) -> str:
        return self.name(IDENTITY_RECORDS)

    @property
    def buyer_events(self) -> str:
        return self.name(BUYER_EVENTS)

    @property
    def buyer_merges(self) -> str:
        return self.name(BUYER_MERGES)

    @property
    def buyer_state(self) -> str:
        return self.name(BUYER_STATE)

    @property
    def match_requests(self) -> str:
        return self.name(MATCH_REQUESTS)

    @property
    def matches(self) -> str:
        return self.name(MATCHES)

    @property
    def surge_alerts(self) -> str:
        return self.name(SURGE_ALERTS)

    @property
    def metrics(self) -> str:
        return self.name(METRICS)

    @property
    def ops(self) -> str:
        return self.name(OPS_RECORDS)

    def sink(self) -> list[str]:
        """What the sink reads: its derived topics, then the raw topics (the archive)."""
        return [self.name(s) for s in SINK_TOPICS + RAW_TOPICS]

    def all(self) -> dict[str, TopicSpec]:
        return {self.name(s): s for s in ALL_TOPICS}
