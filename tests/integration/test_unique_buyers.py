"""Unique-buyer views on the real engine: merges change the counts, both designs agree."""

from __future__ import annotations

import orjson
import pytest

from core.settings import Settings
from leadloom.commands import bench_buyers
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

FAIR = "CIFW-2026-AW"


def event(event_id: str, alias: str, cluster: str, booth: str, hour: int) -> bytes:
    return orjson.dumps({
        "event_id": event_id, "event_type": "booth_scan", "fair_id": FAIR,
        "occurred_at": f"2026-03-26T0{hour}:10:00.000+00:00", "cluster_id": cluster,
        "exhibitor_id": "", "booth_id": booth, "alias": alias, "buyer_id": f"buyer:{alias}",
        "resolved_at": "2026-03-26T03:10:00.000+00:00",
    })


def alias(name: str, buyer: str, version: int) -> bytes:
    return orjson.dumps({"fair_id": FAIR, "alias": name, "buyer_id": f"buyer:{buyer}",
                         "version": version, "updated_at": "2026-03-26T03:10:00.000+00:00"})


def test_every_unique_buyer_view_follows_a_merge(tmp_path) -> None:
    store = open_store(Settings(data_dir=tmp_path, namespace="uniquetest"))
    db = store.database
    try:
        store.insert_json_rows("buyer_events", [
            event("e1", "x", "keqiao", "KQ-01", 2), event("e2", "y", "keqiao", "KQ-01", 2),
            event("e2", "y", "keqiao", "KQ-01", 2),  # a resend counts once
            event("e3", "y", "humen", "HM-01", 3),
        ])
        store.insert_json_rows("buyer_aliases", [alias("x", "x", 1), alias("y", "y", 2)])

        def counts() -> tuple:
            return (
                store.query(f"SELECT cluster_id, buyers, events FROM {db}.unique_buyers_by_cluster"
                            " ORDER BY cluster_id").rows,
                store.query(f"SELECT booth_id, buyers FROM {db}.unique_buyers_by_booth"
                            " ORDER BY booth_id").rows,
                store.query(f"SELECT toHour(hour), sum(buyers) FROM {db}.unique_buyers_by_hour"
                            " GROUP BY hour ORDER BY hour").rows,
                store.query(f"SELECT buyers FROM {db}.unique_buyers_total").rows,
            )

        assert counts() == ([["humen", 1, 1], ["keqiao", 2, 2]], [["HM-01", 1], ["KQ-01", 2]],
                            [[2, 2], [3, 1]], [[2]])
        store.insert_json_rows("buyer_aliases", [alias("y", "x", 3)])  # y merged into x
        assert counts() == ([["humen", 1, 1], ["keqiao", 1, 2]], [["HM-01", 1], ["KQ-01", 1]],
                            [[2, 1], [3, 1]], [[1]])
    finally:
        store.close()


def test_the_unique_buyers_bench_runs_and_both_designs_agree(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, namespace="benchtest")
    result = bench_buyers.run(settings, events=20_000, buyers=1_000, merges=3,
                              progress=lambda _msg: None)
    assert result["both_agree"] is True
    assert all(result[k] > 0 for k in ("query_ms_unique_buyers_by_cluster",
                                       "merge_visible_query_time_ms", "merge_recompute_ms"))
