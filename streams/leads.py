"""Leads per cluster per event-time minute: the pure state behind the Faust table.

Delivery is at least once, so the state must be safe to apply twice. Each state
entry keeps the *sets* of event ids and badge ids it has counted, and counts are
their sizes: reprocessing an event after a crash, or a scanner's resend, changes
nothing. One entry belongs to one source partition (its key says which), so the
per-partition parts add up to exact totals; raw scans are keyed by badge id, so a
badge lives on one partition and distinct badges add up too.

The entry's ``version`` is the number of distinct events it has counted. It only
grows, so the ClickHouse table keeps the latest part with ReplacingMergeTree(version).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

# Which counter an event type feeds; other types are not leads.
LEAD_KIND_BY_EVENT_TYPE = {
    "booth_scan": "scans",
    "online_inquiry": "inquiries",
    "procurement_step": "procurement_steps",
}


@dataclass(frozen=True)
class PartKey:
    cluster_id: str
    minute: str  # "YYYY-MM-DD HH:MM:00", UTC, event time
    source_topic: str
    source_partition: int

    def encode(self) -> str:
        return f"{self.source_topic}|{self.source_partition}|{self.cluster_id}|{self.minute}"


def minute_of(occurred_at: datetime) -> str:
    """The UTC event-time minute: late events count in the window they happened in."""
    return occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:00")


def add(state: dict | None, event_id: str, badge_id: str | None) -> tuple[dict, bool]:
    """Count ``event_id`` (and ``badge_id``) into ``state``; return (state, changed)."""
    events: list[str] = list(state["events"]) if state else []
    badges: list[str] = list(state["badges"]) if state else []
    changed = False
    if event_id not in events:
        events.append(event_id)
        changed = True
    if badge_id and badge_id not in badges:
        badges.append(badge_id)
        changed = True
    return {"events": events, "badges": badges}, changed


def part_row(key: PartKey, kind: str, state: dict, updated_at: datetime) -> dict[str, object]:
    """The ``leads_minute_parts`` row that represents ``state`` now."""
    counts = {k: 0 for k in LEAD_KIND_BY_EVENT_TYPE.values()}
    counts[kind] = len(state["events"])
    return {
        "cluster_id": key.cluster_id,
        "minute": key.minute,
        "source_topic": key.source_topic,
        "source_partition": key.source_partition,
        **counts,
        "distinct_badges": len(state["badges"]),
        "version": len(state["events"]) + len(state["badges"]),
        "updated_at": updated_at.isoformat(timespec="milliseconds"),
    }

