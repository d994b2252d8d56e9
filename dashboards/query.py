"""The ClickHouse panel target for grafana-foundation-sdk (it ships no ClickHouse query type).

A target of the ``grafana-clickhouse-datasource`` plugin in SQL-editor mode, exactly the
shape GRAFANA.md ("Panel target shape") gives::

    {"datasource": {"type": "grafana-clickhouse-datasource", "uid": "<uid>"},
     "refId": "A", "editorType": "sql", "rawSql": "SELECT ...", "format": 0}

``format`` is the plugin's integer: 0 time series (long rows ``time, label, value`` are
pivoted into one series per label), 1 table. :func:`register` adds the type to the SDK's
runtime under the plugin id, so ``Dashboard.from_json`` decodes these targets as
:class:`ClickHouseQuery` (not the SDK's ``UnknownDataquery`` bag) and a model round-trips.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_TYPE = "grafana-clickhouse-datasource"  # plugin id and data source type
DATASOURCE_UID = "leadloom-clickhouse"  # fixed: provisioning and every target use it
EDITOR_SQL = "sql"


class Format(IntEnum):
    """The plugin's result formats (GRAFANA.md); logs and traces are not used here."""

    TIME_SERIES = 0
    TABLE = 1


class ClickHouseQuery(cogvariants.Dataquery):
    """One SQL target of the ClickHouse data source (raw SQL, plugin macros allowed)."""

    def __init__(self, ref_id: str = "", raw_sql: str = "", format_val: int = Format.TABLE,
                 datasource: DataSourceRef | None = None, editor_type: str = EDITOR_SQL,
                 hide: bool | None = None) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format_val = int(format_val)
        self.datasource = datasource
        self.editor_type = editor_type
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id, "editorType": self.editor_type, "rawSql": self.raw_sql,
            "format": self.format_val,
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        args: dict[str, Any] = {}
        for key, arg in (("refId", "ref_id"), ("rawSql", "raw_sql"), ("format", "format_val"),
                         ("editorType", "editor_type"), ("hide", "hide")):
            if key in data:
                args[arg] = data[key]
        if "datasource" in data:
            args["datasource"] = DataSourceRef.from_json(data["datasource"])
        return cls(**args)


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    """Builds a :class:`ClickHouseQuery` on the project's data source (fixed uid)."""

    def __init__(self, raw_sql: str, format_val: Format, ref_id: str = "A") -> None:
        self._internal = ClickHouseQuery(
            ref_id, raw_sql, format_val, DataSourceRef(type_val=DATASOURCE_TYPE,
                                                       uid=DATASOURCE_UID))

    def build(self) -> ClickHouseQuery:
        return self._internal


def datasource_ref() -> DataSourceRef:
    return DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


def register() -> None:
    """Register the SDK's default plugins and this query type with its runtime (idempotent:
    the runtime is a process-wide registry keyed by identifier)."""
    from grafana_foundation_sdk.cog.plugins import register_default_plugins

    register_default_plugins()
    cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(
        identifier=DATASOURCE_TYPE, from_json_hook=ClickHouseQuery.from_json))
