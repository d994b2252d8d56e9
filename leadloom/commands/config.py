"""``leadloom config``: the effective configuration of this process, secrets masked.

Every setting with the ``LEADLOOM_*`` variable that sets it and where its value came from
(``env``, ``.env``, ``default``), then what the pipeline derives from them: the resolved
ClickHouse DSN, the Faust app id, the sink's consumer group and every topic with its
partitions and key. Passwords never appear: ``clickhouse_password`` and any password or
token in a DSN are masked (``core.settings.Settings.dump`` and ``mask_dsn``).
"""

from __future__ import annotations

from core.settings import ENV_PREFIX, Settings, mask_dsn
from schemas.registry import FAUST_TABLES, changelog_topic


def effective_config(settings: Settings) -> dict[str, object]:
    """The JSON object ``leadloom config --json`` prints (safe to show: secrets masked)."""
    values = settings.dump()
    sources = settings.sources()
    return {
        "settings": {
            name: {"env": f"{ENV_PREFIX}{name.upper()}", "value": values[name],
                   "source": sources[name]}
            for name in values
        },
        "derived": {
            "clickhouse_dsn": mask_dsn(settings.resolved_dsn),
            "embedded_store": settings.embedded,
            "faust_app_id": settings.faust_app_id,
            "sink_group": settings.sink_group,
            "topics": {
                name: {"partitions": spec.partitions, "key": str(spec.key),
                       "carries": str(spec.value_schema)}
                for name, spec in settings.topics.all().items()
            },
            "changelog_topics": [changelog_topic(settings.faust_app_id, t)
                                 for t in FAUST_TABLES],
        },
    }


def render(config: dict[str, object]) -> str:
    """The human-readable form: one ``VARIABLE = value  (source)`` line per setting."""
    settings = config["settings"]
    derived = config["derived"]
    assert isinstance(settings, dict) and isinstance(derived, dict)
    width = max(len(s["env"]) for s in settings.values())
    lines = ["settings:"]
    for entry in settings.values():
        lines.append(f"  {entry['env']:<{width}} = {entry['value']}  ({entry['source']})")
    lines.append("derived:")
    for name in ("clickhouse_dsn", "embedded_store", "faust_app_id", "sink_group"):
        lines.append(f"  {name:<{width}} = {derived[name]}")
    lines.append("topics (partitions, key):")
    topics = derived["topics"]
    assert isinstance(topics, dict)
    for name, spec in topics.items():
        lines.append(f"  {name}  {spec['partitions']}  key: {spec['key']}")
    lines.append("changelog topics: " + ", ".join(derived["changelog_topics"]))
    return "\n".join(lines)
