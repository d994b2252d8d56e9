"""Each Grafana org's data source, exactly as the build gives it to Grafana (protocol http,
user, database; the password Grafana would get from ``LEADLOOM_GRAFANA_CH_PASSWORD_<USER>``),
reads the embedded store through the owner's real ClickHouse HTTP interface with the real
``http://`` client: the organizers' sees every cluster, a delegation's its own only, and a
data source given another org's password is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import orjson
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from core.owner import QueryServer
from core.settings import Settings
from core.store import Store
from core.users import Users, users_path
from dashboards.build import datasource_json
from dashboards.orgs import GrafanaOrg, find_org, grafana_orgs
from schemas.scope import OPS_SCOPE, ORGANIZER_SCOPE, delegation_scope
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration
CLUSTERS = ("keqiao", "dongguan", "humen")


def password(org: GrafanaOrg) -> str:
    return f"pw-{org.ch_user}"


def lead_row(cluster: str, n: int) -> bytes:
    return orjson.dumps({
        "cluster_id": cluster, "minute": "2026-03-26 02:15:00", "source_topic": "t",
        "source_partition": n, "scans": 3, "inquiries": 0, "procurement_steps": 0,
        "distinct_badges": 2, "version": 5, "updated_at": "2026-03-26 02:15:00",
    })


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Settings, int]]:
    """A store with leads of three clusters, its HTTP interface on a free port, and the
    users of the organizers', ops' and the three delegations' orgs."""
    settings = Settings(data_dir=tmp_path / "data", namespace="grafanads", http_port=0)
    store: Store = open_store(settings)
    store.insert_json_rows("leads_minute_parts",
                           [lead_row(c, n) for n, c in enumerate(CLUSTERS)])
    users = Users()
    orgs = grafana_orgs()
    for org in orgs:
        scope = (ORGANIZER_SCOPE if org.key == "organizers" else OPS_SCOPE if org.key == "ops"
                 else delegation_scope(org.key))
        if org.cluster_id is None or org.cluster_id in CLUSTERS:
            users = users.add(org.ch_user, scope, password(org))
    users.save(users_path(settings))
    server = QueryServer(store, settings)
    server.start()
    try:
        port = json.loads((settings.data_dir / "store.endpoint").read_text())["port"]
        yield settings, port
    finally:
        server.stop()
        store.close()


def client_as_grafana(settings: Settings, org: GrafanaOrg, port: int,
                      secret: str | None = None) -> Any:
    """The http client configured from the org's data source as built (its port aside)."""
    ds = datasource_json(org, settings, port=port)
    jd = ds["jsonData"]
    assert (jd["protocol"], jd["secure"]) == ("http", False)
    return clickhouse_connect.get_client(
        interface="http", host=jd["host"], port=jd["port"], username=jd["username"],
        password=password(org) if secret is None else secret,
        database=jd["defaultDatabase"])


def clusters_seen(client: Any, settings: Settings) -> list[str]:
    db = settings.clickhouse_database
    return [r[0] for r in client.query(
        f"SELECT DISTINCT cluster_id FROM {db}.leads_minute_parts ORDER BY 1").result_rows]


def test_each_orgs_data_source_reads_what_its_user_may(served: tuple[Settings, int]) -> None:
    settings, port = served
    orgs = grafana_orgs()
    organizers = client_as_grafana(settings, find_org(orgs, "organizers"), port)
    assert clusters_seen(organizers, settings) == sorted(CLUSTERS)
    for cluster in CLUSTERS:
        delegation = client_as_grafana(settings, find_org(orgs, cluster), port)
        assert clusters_seen(delegation, settings) == [cluster]


def test_a_data_source_with_another_orgs_password_is_refused(
        served: tuple[Settings, int]) -> None:
    settings, port = served
    orgs = grafana_orgs()
    keqiao, organizers = find_org(orgs, "keqiao"), find_org(orgs, "organizers")
    with pytest.raises(DatabaseError, match="516"):
        client_as_grafana(settings, keqiao, port, secret=password(organizers))
