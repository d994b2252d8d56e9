"""``leadloom groups``: the namespace's consumer groups, their lag, and an offset reset by time.

The groups are the pipeline's own (``Pipeline.consumer_groups``: the stream workers' Faust
app id and the sink's group), each with the topics it consumes; no other group is shown
or reset. Lag per partition is end offset minus committed offset; a partition without a
commit counts from its first offset, as the lag sampler does.

``reset`` moves a *stopped* group's committed offsets to the first message at or after a
time (the consumer's ``offsets_for_times``; a partition with no such message goes to its
end offset, as Kafka's own tool does), or to ``earliest``/``latest``. A group with active
members is refused: its members would overwrite the commit. The new offsets are committed
in one admin request (``reset_group_offsets`` with explicit offsets).

Failure modes: an unreachable broker raises ``KafkaUnavailable``; every refusal raises
``GroupsError`` with a one-line reason (the CLI prints it and exits 1).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from core.kafka import KafkaUnavailable, admin, bootstrap_list
from core.settings import Settings
from leadloom.commands.times import TimeError, aware_time

Progress = Callable[[str], None]
# Group states in which the group has no members (Kafka's DescribeGroups states).
_STOPPED_STATES = {"Empty", "Dead", ""}


class GroupsError(RuntimeError):
    """A refused listing or reset (one line: what to do instead)."""


def namespace_groups(settings: Settings) -> dict[str, list[str]]:
    """Group id -> the topics it consumes, for the configured namespace."""
    from leadloom.pipeline import Pipeline

    return Pipeline(settings).consumer_groups()


def parse_time(text: str) -> datetime | str:
    """``earliest``, ``latest`` or an aware ISO-8601 time (a naive one is refused: the
    zone decides which messages are meant)."""
    if text in ("earliest", "latest"):
        return text
    try:
        return aware_time(text, "--to-time")
    except TimeError as exc:
        raise GroupsError(f"{exc} (or 'earliest', 'latest')") from exc


class _Clients:
    """An admin client and a group-less consumer (metadata and offsets only)."""

    def __init__(self, settings: Settings) -> None:
        self.admin = admin(settings)
        try:
            self.consumer = KafkaConsumer(bootstrap_servers=bootstrap_list(settings),
                                          enable_auto_commit=False)
        except KafkaError as exc:
            self.admin.close()
            raise KafkaUnavailable(f"no Kafka broker at {settings.kafka_bootstrap}") from exc

    def partitions(self, topics: list[str]) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t in topics
                for p in sorted(self.consumer.partitions_for_topic(t) or ())]

    def committed(self, group: str) -> dict[TopicPartition, int]:
        offsets = self.admin.list_group_offsets(group).get(group, {})
        return {tp: meta.offset for tp, meta in offsets.items()
                if meta is not None and meta.offset >= 0}

    def describe(self, group: str) -> tuple[str, list[dict[str, Any]]]:
        """(state, members as {member_id, client_id, client_host}) of ``group``."""
        info = self.admin.describe_groups([group]).get(group) or {}
        members = [{k: m.get(k) for k in ("member_id", "client_id", "client_host")}
                   for m in info.get("members") or []]
        return str(info.get("group_state") or info.get("state") or ""), members

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def list_groups(settings: Settings) -> dict[str, Any]:
    """Every namespace group: state, members, and per partition committed/end/lag.

    ``committed`` is None for a partition the group never committed (its lag counts from
    the partition's first offset); ``exists`` is False for a group without any commit."""
    clients = _Clients(settings)
    try:
        out = []
        for group, topics in namespace_groups(settings).items():
            state, members = clients.describe(group)
            committed = clients.committed(group)
            partitions = clients.partitions(topics)
            ends = clients.consumer.end_offsets(partitions) if partitions else {}
            firsts = clients.consumer.beginning_offsets(partitions) if partitions else {}
            rows = []
            for tp in partitions:
                done = committed.get(tp)
                lag = max(0, ends[tp] - (firsts[tp] if done is None else done))
                rows.append({"topic": tp.topic, "partition": tp.partition, "committed": done,
                             "end": ends[tp], "lag": lag})
            out.append({"group": group, "state": state, "members": members,
                        "exists": bool(committed), "lag": sum(r["lag"] for r in rows),
                        "partitions": rows})
        return {"namespace": settings.namespace, "groups": out}
    finally:
        clients.close()


def plan_reset(settings: Settings, group: str, to_time: datetime | str,
               topics: list[str] | None = None) -> dict[str, Any]:
    """The reset of ``group`` to ``to_time`` (nothing committed): per partition the
    current committed offset (None: never committed) and the new one.

    Refuses a group outside the namespace, a topic the group does not consume and a group
    with active members."""
    groups = namespace_groups(settings)
    if group not in groups:
        raise GroupsError(f"{group!r} is not a consumer group of namespace"
                          f" {settings.namespace!r} (its groups: {', '.join(groups)})")
    wanted = topics or groups[group]
    foreign = [t for t in wanted if t not in groups[group]]
    if foreign:
        raise GroupsError(f"group {group!r} does not consume {', '.join(foreign)}")
    clients = _Clients(settings)
    try:
        state, members = clients.describe(group)
        if members or state not in _STOPPED_STATES:
            raise GroupsError(f"group {group!r} has {len(members)} active member(s)"
                              f" (state {state}): stop 'leadloom run' first")
        partitions = clients.partitions(wanted)
        if not partitions:
            raise GroupsError(f"no partitions found for {', '.join(wanted)}")
        committed = clients.committed(group)
        ends = clients.consumer.end_offsets(partitions)
        if to_time == "earliest":
            new = clients.consumer.beginning_offsets(partitions)
        elif to_time == "latest":
            new = dict(ends)
        else:
            assert isinstance(to_time, datetime)
            ms = int(to_time.timestamp() * 1000)
            found = clients.consumer.offsets_for_times({tp: ms for tp in partitions})
            # No message at or after T: the end offset (what kafka-consumer-groups does).
            new = {tp: (found[tp].offset if found.get(tp) is not None else ends[tp])
                   for tp in partitions}
        return {"group": group, "state": state,
                "to_time": to_time if isinstance(to_time, str) else to_time.isoformat(),
                "partitions": [{"topic": tp.topic, "partition": tp.partition,
                                "current": committed.get(tp), "new": new[tp]}
                               for tp in partitions]}
    finally:
        clients.close()


def apply_reset(settings: Settings, plan: dict[str, Any]) -> dict[str, Any]:
    """Commit ``plan``'s new offsets with the group's id; the broker refuses it if a member
    joined meanwhile (raised as ``GroupsError``). Returns the offsets committed."""
    group = plan["group"]
    specs = {TopicPartition(p["topic"], p["partition"]): int(p["new"])
             for p in plan["partitions"]}
    client = admin(settings)
    try:
        result = client.reset_group_offsets(group, specs)
    finally:
        client.close()
    errors = {f"{tp.topic}[{tp.partition}]": r["error"].__name__
              for tp, r in result.items()
              if r.get("error") is not None and getattr(r["error"], "errno", 0) != 0}
    if errors:
        raise GroupsError(f"group {group!r}: the broker refused the reset ({errors});"
                          " is a member running?")
    return {f"{tp.topic}[{tp.partition}]": r["offset"] for tp, r in result.items()}
