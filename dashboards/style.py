"""House style of every LeadLoom dashboard: bilingual names, panel kinds, the dashboard frame.

A dashboard module describes its panels as :class:`PanelSpec` values (title in Chinese and
English, kind, SQL, grid position, the columns the SQL returns) and its variables as
:class:`VariableSpec`; :func:`render` turns a :class:`DashboardSpec` into the SDK's
dashboard model with this style applied, so every dashboard looks and behaves alike:

- titles "中文 English" with ``dashboard_language = "zh-en"``, English only with ``"en"``;
- every target is a :class:`dashboards.query.ClickHouseQuery` on the fixed data source
  uid; time series panels use format 0 (time series), every other kind format 1 (table);
- panel ids are the spec's (stable: never derived from order at render time), the grid
  position is the spec's (nothing auto-placed);
- times shown in Asia/Shanghai (the fair's zone), not editable, no shared crosshair.

SQL reads the project's tables by registry names qualified with the configured database
(``settings.clickhouse_database``): the data source's ``defaultDatabase`` is the same
database, but qualified names keep a panel's SQL runnable as it is by ``leadloom sql`` and
by the tests, whatever database a client defaults to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from grafana_foundation_sdk.builders import bargauge, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    GridPos,
    VariableHide,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from dashboards.query import ClickHouseQueryBuilder, Format, datasource_ref

Language = Literal["zh-en", "en"]
TIMEZONE = "Asia/Shanghai"
GRID_COLUMNS = 24


class Kind(StrEnum):
    """Panel kinds the dashboards use (Grafana panel plugin ids)."""

    TIMESERIES = "timeseries"
    STAT = "stat"
    TABLE = "table"
    BARGAUGE = "bargauge"


def label(zh: str, en: str, language: Language) -> str:
    """A title in the configured language: Chinese first then English, or English only."""
    return f"{zh} {en}" if language == "zh-en" else en


@dataclass(frozen=True)
class Grid:
    """A panel's place on Grafana's 24-column grid (rows of 30 px)."""

    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class PanelSpec:
    """One panel: a single SQL target (refId ``A``).

    ``columns`` are the result columns the SQL returns, in order (a time series' first is
    ``time``); the tests check the engine's answer against them.
    """

    id: int
    zh: str
    en: str
    kind: Kind
    sql: str
    grid: Grid
    columns: tuple[str, ...]
    unit: str = ""
    description: str = ""

    @property
    def format(self) -> Format:
        return Format.TIME_SERIES if self.kind is Kind.TIMESERIES else Format.TABLE


@dataclass(frozen=True)
class VariableSpec:
    """A dashboard variable: ``query`` (SQL, first row = default) or ``constant`` (hidden)."""

    name: str
    kind: Literal["query", "constant"]
    value: str  # the SQL of a query variable, the value of a constant
    zh: str = ""
    en: str = ""


@dataclass(frozen=True)
class DashboardSpec:
    """A whole dashboard before rendering; see the module docstring."""

    uid: str
    zh: str
    en: str
    panels: tuple[PanelSpec, ...]
    variables: tuple[VariableSpec, ...] = ()
    refresh: str = "30s"
    time_from: str = "now/d"
    time_to: str = "now"
    tags: tuple[str, ...] = field(default_factory=tuple)


def _panel(spec: PanelSpec, language: Language) -> dash.Panel | timeseries.Panel | stat.Panel:
    target = ClickHouseQueryBuilder(spec.sql, spec.format)
    builder: timeseries.Panel | stat.Panel | table.Panel | bargauge.Panel
    if spec.kind is Kind.TIMESERIES:
        builder = (timeseries.Panel().line_width(2).fill_opacity(10).show_points(
            common.VisibilityMode.NEVER).legend(common_builders.VizLegendOptions().show_legend(
                True).display_mode(common.LegendDisplayMode.LIST).placement(
                common.LegendPlacement.BOTTOM)))
    elif spec.kind is Kind.STAT:
        builder = (stat.Panel().graph_mode(common.BigValueGraphMode.NONE)
                   .color_mode(common.BigValueColorMode.VALUE)
                   .reduce_options(common_builders.ReduceDataOptions().values(False)
                                   .calcs(["lastNotNull"])))
    elif spec.kind is Kind.BARGAUGE:
        # every row a bar, in the SQL's order (the ranking is the query's)
        builder = (bargauge.Panel().display_mode(common.BarGaugeDisplayMode.BASIC)
                   .orientation(common.VizOrientation.HORIZONTAL)
                   .reduce_options(common_builders.ReduceDataOptions().values(True)
                                   .calcs(["lastNotNull"])))
    else:
        builder = table.Panel().cell_height(common.TableCellHeight.SM)
    builder = (builder.id(spec.id).title(label(spec.zh, spec.en, language))
               .datasource(datasource_ref()).with_target(target)
               .grid_pos(GridPos(h=spec.grid.h, w=spec.grid.w, x=spec.grid.x, y=spec.grid.y)))
    if spec.unit:
        builder = builder.unit(spec.unit)
    if spec.description:
        builder = builder.description(spec.description)
    return builder  # type: ignore[return-value]


def _variable(spec: VariableSpec, language: Language) -> dash.QueryVariable | dash.ConstantVariable:
    if spec.kind == "constant":
        return dash.ConstantVariable(spec.name).value(spec.value)
    return (dash.QueryVariable(spec.name).label(label(spec.zh, spec.en, language))
            .datasource(datasource_ref()).query(spec.value)
            .refresh(VariableRefresh.ON_DASHBOARD_LOAD).sort(VariableSort.DISABLED)
            .current(VariableOption(selected=False, text="", value=""))
            .hide(VariableHide.DONT_HIDE))


def render(spec: DashboardSpec, language: Language) -> DashboardModel:
    """The SDK dashboard model of ``spec`` in ``language`` (deterministic)."""
    builder = (dash.Dashboard(label(spec.zh, spec.en, language)).uid(spec.uid)
               .tags(list(spec.tags)).timezone(TIMEZONE).refresh(spec.refresh)
               .time(spec.time_from, spec.time_to).tooltip(DashboardCursorSync.OFF)
               .readonly().version(1))
    for variable in spec.variables:
        builder = builder.with_variable(_variable(variable, language))
    for panel in spec.panels:
        builder = builder.with_panel(_panel(panel, language))
    return builder.build()
