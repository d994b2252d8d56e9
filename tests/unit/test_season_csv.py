"""Season CSV: every error kind is named with its line, a bad file yields no rows at all,
and the simulator's previous-season file is one the importer accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.season import SeasonFileError, SeasonRow, parse_season
from producers.simulator.season import write_season_csv

HEADER = "season,pavilion_id,cluster_id,professional_buyers\n"
GBA = "gba-fashion-belt"


def errors_of(text: str) -> list[str]:
    with pytest.raises(SeasonFileError) as caught:
        parse_season(text, source="s.csv")
    return caught.value.errors


def test_a_good_file_parses_in_order_with_line_numbers() -> None:
    rows = parse_season(HEADER + f"CIFW-2025-AW,{GBA},humen,120\n\n"
                        f" CIFW-2025-AW , {GBA} , foshan , 0 \n")
    assert rows == [SeasonRow("CIFW-2025-AW", GBA, "humen", 120, 2),
                    SeasonRow("CIFW-2025-AW", GBA, "foshan", 0, 4)]


def test_columns_may_come_in_any_order() -> None:
    rows = parse_season("cluster_id,professional_buyers,season,pavilion_id\n"
                        "heze,7,CIFW-2025-SS,shandong-hanfu-belt\n")
    assert rows == [SeasonRow("CIFW-2025-SS", "shandong-hanfu-belt", "heze", 7, 2)]


@pytest.mark.parametrize(("text", "expected"), [
    ("season,pavilion,cluster_id,professional_buyers\nS,x,y,1\n", "line 1: header must be"),
    ("season,pavilion_id,cluster_id\nS,x,y\n", "line 1: header must be"),
    (HEADER + f"CIFW 2025,{GBA},humen,1\n", "line 2: season 'CIFW 2025' is not"),
    (HEADER + f",{GBA},humen,1\n", "line 2: season '' is not"),
    (HEADER + f"CIFW-2025-AW,{GBA},humen,1\nCIFW-2024-AW,{GBA},foshan,1\n",
     "line 3: season 'CIFW-2024-AW' differs from 'CIFW-2025-AW' (line 2)"),
    (HEADER + "CIFW-2025-AW,hall-9,humen,1\n", "line 2: pavilion_id 'hall-9' is not"),
    (HEADER + f"CIFW-2025-AW,{GBA},atlantis,1\n", "line 2: cluster_id 'atlantis' is not"),
    (HEADER + f"CIFW-2025-AW,{GBA},keqiao,1\n",
     "line 2: cluster 'keqiao' is in pavilion 'yangtze-textiles', not 'gba-fashion-belt'"),
    (HEADER + f"CIFW-2025-AW,{GBA},humen,-1\n", "line 2: professional_buyers '-1' is not"),
    (HEADER + f"CIFW-2025-AW,{GBA},humen,12.5\n", "line 2: professional_buyers '12.5' is not"),
    (HEADER + f"CIFW-2025-AW,{GBA},humen,1e3\n", "line 2: professional_buyers '1e3' is not"),
    (HEADER + f"CIFW-2025-AW,{GBA},humen,\n", "line 2: professional_buyers '' is not"),
    (HEADER + f"CIFW-2025-AW,{GBA},humen,4294967296\n",
     "line 2: professional_buyers 4294967296 is above 4294967295"),
    (HEADER + f"CIFW-2025-AW,{GBA},humen,1,x\n", "line 2: 5 fields, the header has 4"),
    (HEADER + f"CIFW-2025-AW,{GBA},humen,1\nCIFW-2025-AW,{GBA},humen,2\n",
     f"line 3: {GBA}/humen again (first on line 2)"),
    (HEADER, "line 1: no rows after the header"),
    ("", "line 1: empty"),
])
def test_each_error_names_its_line(text: str, expected: str) -> None:
    assert any(e.startswith(expected) for e in errors_of(text)), errors_of(text)


def test_every_bad_line_is_reported_and_nothing_is_returned() -> None:
    text = (HEADER + f"CIFW-2025-AW,{GBA},humen,10\nCIFW-2025-AW,{GBA},atlantis,x\n"
            f"CIFW-2025-AW,{GBA},foshan,3\nCIFW-2025-AW,nowhere,zhongshan,4\n")
    errors = errors_of(text)
    assert [e.split(":")[0] for e in errors] == ["line 3", "line 3", "line 5"]
    with pytest.raises(SeasonFileError, match=r"^s\.csv: line 3: .*\(and 2 more\); nothing"):
        parse_season(text, source="s.csv")


def test_the_simulators_previous_season_file_is_accepted(tmp_path: Path) -> None:
    rows = [{"pavilion_id": GBA, "cluster_id": "humen", "professional_buyers": 31},
            {"pavilion_id": "yangtze-textiles", "cluster_id": "keqiao",
             "professional_buyers": 44}]
    path = write_season_csv(rows, tmp_path / "prev.csv")
    parsed = parse_season(path.read_text(encoding="utf-8"))
    assert [(r.season, r.pavilion_id, r.cluster_id, r.professional_buyers) for r in parsed] == [
        ("CIFW-2025-AW", GBA, "humen", 31), ("CIFW-2025-AW", "yangtze-textiles", "keqiao", 44)]
