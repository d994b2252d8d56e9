"""``leadloom season import`` on the real embedded engine: a good file lands in
season_baseline, importing a key again replaces its count, a bad file changes nothing, and
the command refuses while another process owns the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.reads import StoreError
from core.season import SeasonFileError
from core.settings import Settings
from leadloom.commands.season import import_file
from schemas.registry import SEASON_BASELINE
from tests.factories.rows import fair_day_rows
from tests.factories.stores import open_store

pytestmark = pytest.mark.integration

HEADER = "season,pavilion_id,cluster_id,professional_buyers\n"
GBA = "gba-fashion-belt"


def stored(settings: Settings) -> list[tuple]:
    store = open_store(settings)
    try:
        return [tuple(r) for r in store.query(
            f"SELECT season, pavilion_id, cluster_id, professional_buyers, source"
            f" FROM {store.database}.{SEASON_BASELINE.name} FINAL"
            " ORDER BY season, pavilion_id, cluster_id").rows]
    finally:
        store.close()


def test_import_replaces_a_key_again_and_a_bad_file_changes_nothing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", namespace="seasontest")
    first = tmp_path / "first.csv"
    first.write_text(HEADER + f"CIFW-2025-AW,{GBA},humen,120\nCIFW-2025-AW,{GBA},foshan,80\n"
                     "CIFW-2025-AW,yangtze-textiles,keqiao,0\n", encoding="utf-8")
    messages: list[str] = []
    summary = import_file(settings, first, messages.append)
    assert summary == {"file": str(first), "database": settings.clickhouse_database,
                       "season": "CIFW-2025-AW", "rows": 3, "professional_buyers": 200}
    assert messages and "3 pavilion/cluster count(s) of season CIFW-2025-AW" in messages[0]

    again = tmp_path / "again.csv"  # a spreadsheet export: BOM, CRLF, columns reordered
    again.write_bytes("\ufeffcluster_id,season,pavilion_id,professional_buyers\r\n"
                      f"humen,CIFW-2025-AW,{GBA},135\r\n".encode())
    assert import_file(settings, again, lambda _m: None)["rows"] == 1
    expected = [("CIFW-2025-AW", GBA, "foshan", 80, "first.csv"),
                ("CIFW-2025-AW", GBA, "humen", 135, "again.csv"),
                ("CIFW-2025-AW", "yangtze-textiles", "keqiao", 0, "first.csv")]
    assert stored(settings) == expected

    bad = tmp_path / "bad.csv"  # its first line is good: still nothing may load
    bad.write_text(HEADER + f"CIFW-2025-AW,{GBA},humen,999\nCIFW-2025-AW,{GBA},humen,-3\n",
                   encoding="utf-8")
    with pytest.raises(SeasonFileError, match="line 3: professional_buyers '-3'"):
        import_file(settings, bad, lambda _m: None)
    assert stored(settings) == expected


def test_the_import_refuses_while_another_process_owns_the_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", namespace="seasontest")
    good = tmp_path / "good.csv"
    good.write_text(HEADER + f"CIFW-2025-AW,{GBA},humen,120\n", encoding="utf-8")
    owner = open_store(settings)  # what leadloom run holds while it runs
    try:
        with pytest.raises(StoreError, match="stop leadloom run first; nothing was loaded"):
            import_file(settings, good, lambda _m: None)
        assert owner.query(
            f"SELECT count() FROM {owner.database}.{SEASON_BASELINE.name}").rows == [[0]]
    finally:
        owner.close()


def test_the_comparison_shows_an_imported_season_at_once(tmp_path: Path) -> None:
    # The views are snapshots (core/snapshots.py): the import, owning the store, refreshes
    # them, so the next reader sees the previous season without waiting for leadloom run.
    settings = Settings(data_dir=tmp_path / "data", namespace="seasontest")
    day = fair_day_rows(events=1500, seed=3, namespace="seasontest")
    store = open_store(settings)
    try:
        for table, rows in day.rows.items():
            store.insert_json_rows(table, rows)
        store.refresh_snapshots()
        fair_id, pavilion, cluster = store.query(
            f"SELECT fair_id, pavilion_id, cluster_id FROM {store.database}.season_comparison"
            " ORDER BY professional_buyers DESC, cluster_id LIMIT 1").rows[0]
    finally:
        store.close()
    season = tmp_path / "season.csv"
    season.write_text(HEADER + f"CIFW-2019-AW,{pavilion},{cluster},7\n", encoding="utf-8")
    import_file(settings, season, lambda _m: None)
    store = open_store(settings)
    try:
        assert store.query(
            f"SELECT previous_season, previous_professional_buyers FROM {store.database}"
            f".season_comparison WHERE fair_id = '{fair_id}' AND pavilion_id = '{pavilion}'"
            f" AND cluster_id = '{cluster}'").rows == [["CIFW-2019-AW", 7]]
    finally:
        store.close()
