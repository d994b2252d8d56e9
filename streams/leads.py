"""Leads per cluster per event-time minute: the pure state behind the Faust table.

Delivery is at least once, so the state must be safe to apply twice. Each state entry
keeps the *sets* of event ids and badge ids it has counted, and counts are their sizes:
reprocessing an event after a crash, or a scanner's resend, changes nothing.

The validate stage turns each lead event into a *contribution* and sends it to the
partition of ``leads.contributions`` that :func:`leads_partition` picks: a stable hash of
the badge (scans) or the event id (inquiries, procurement steps). Raw partitions cannot
be trusted for this: they depend on the producer's partitioner (librdkafka's default
CRC32, the Java client's murmur2, a hand-picked partition), and one badge resent by two
clients would sit on two raw partitions and be counted twice.

One entry covers one (raw topic, contribution partition, event-time minute) and holds
every cluster seen there. Entries belong to one contribution partition (their key says
which), so the per-partition parts add up to exact totals; a badge's contributions all go
to one partition, so distinct badges add up too, and a resent event (same id, same badge)
lands where it was counted. Keying by minute rather than by (cluster, minute) keeps the
number of changelog writes per batch small: a batch spans few minutes but many clusters.

A part's ``version`` is the number of distinct events plus badges counted. It only grows,
so the ClickHouse table keeps the latest part with ReplacingMergeTree(version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from schemas.events import EventType
from schemas.registry import crc32_partition

# Which counter an event type feeds; other types are not leads.
LEAD_KIND_BY_EVENT_TYPE = {
    EventType.BOOTH_SCAN: "scans",
    EventType.ONLINE_INQUIRY: "inquiries",
    EventType.PROCUREMENT_STEP: "procurement_steps",
}


def minute_of(occurred_at: datetime) -> str:
    """The UTC event-time minute: late events count in the window they happened in."""
    return _minute_text(int(occurred_at.timestamp() // 60))


@lru_cache(maxsize=4096)
def _minute_text(minute: int) -> str:
    # Formatting a datetime per event cost ~2% of a worker; a fair has few minutes.
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M:00")


def state_key(source_topic: str, source_partition: int, minute: str) -> str:
    return f"{source_topic}|{source_partition}|{minute}"


def leads_partition(badge_id: str | None, event_id: str, partitions: int) -> int:
    """The ``leads.contributions`` partition of an event: CRC32 of its badge, else its id.

    Stable across processes and Python versions (unlike ``hash``), and independent of how
    the raw event was partitioned.
    """
    return crc32_partition(badge_id or event_id, partitions)


def contribution(event_id: str, cluster_id: str, minute: str, topic: str, kind: str,
                 badge_id: str | None) -> dict[str, object]:
    """One lead event as the aggregating agent needs it (one JSON line)."""
    return {"event_id": event_id, "cluster_id": cluster_id, "minute": minute, "topic": topic,
            "kind": kind, "badge_id": badge_id}


@dataclass
class MinuteState:
    """Working form of one entry: per cluster, the sets counted so far."""

    events: dict[str, set[str]] = field(default_factory=dict)
    badges: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, stored: dict | None) -> MinuteState:
        state = cls()
        for cluster, sets in (stored or {}).items():
            state.events[cluster] = set(sets["events"])
            state.badges[cluster] = set(sets["badges"])
        return state

    def add(self, cluster_id: str, event_id: str, badge_id: str | None) -> bool:
        """Count the event (and badge); return whether anything changed."""
        events = self.events.setdefault(cluster_id, set())
        badges = self.badges.setdefault(cluster_id, set())
        changed = event_id not in events or (badge_id is not None and badge_id not in badges)
        events.add(event_id)
        if badge_id is not None:
            badges.add(badge_id)
        return changed

    def dump(self) -> dict:
        """The table value: sorted lists, so equal states serialise identically."""
        return {
            c: {"events": sorted(self.events[c]), "badges": sorted(self.badges[c])}
            for c in sorted(self.events)
        }


def part_row(
    source_topic: str, source_partition: int, minute: str, cluster_id: str, kind: str,
    state: MinuteState, updated_at: datetime,
) -> dict[str, object]:
    """The ``leads_minute_parts`` row for one cluster of an entry, as it stands now."""
    counts = {k: 0 for k in LEAD_KIND_BY_EVENT_TYPE.values()}
    events, badges = len(state.events[cluster_id]), len(state.badges[cluster_id])
    counts[kind] = events
    return {
        "cluster_id": cluster_id,
        "minute": minute,
        "source_topic": source_topic,
        "source_partition": source_partition,
        **counts,
        "distinct_badges": badges,
        "version": events + badges,
        "updated_at": updated_at.isoformat(timespec="milliseconds"),
    }
