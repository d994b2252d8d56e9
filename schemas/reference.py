"""Reference data the product ships: clusters, pavilions and the booth/exhibitor roster.

The roster is generated deterministically from a fixed seed so that every process
(simulator, workers, tests) sees the same booths without a shared file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Pavilion:
    id: str
    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Cluster:
    id: str
    code: str
    name_zh: str
    name_en: str
    city: str
    province: str
    specialties: tuple[str, ...]
    categories: tuple[str, ...]
    pavilion_id: str
    booths: int


@dataclass(frozen=True)
class Booth:
    id: str
    exhibitor_id: str
    exhibitor_name: str
    cluster_id: str
    pavilion_id: str


PAVILIONS: tuple[Pavilion, ...] = (
    Pavilion("gba-fashion-belt", "GBA", "大湾区时尚产业带", "Greater Bay Area fashion belt"),
    Pavilion("yangtze-textiles", "YRD", "长三角纺织面料馆", "Yangtze Delta textiles"),
    Pavilion("jiangsu-zhejiang-apparel", "JZA", "江浙服装制造馆", "Jiangsu-Zhejiang apparel"),
    Pavilion(
        "shandong-hanfu-belt", "SDH", "鲁西南汉服与家纺带", "Shandong Hanfu and home textiles"
    ),
    Pavilion("fujian-sportswear", "FJS", "闽南运动服饰馆", "Fujian sportswear"),
)

CLUSTERS: tuple[Cluster, ...] = (
    Cluster("keqiao", "KQ", "柯桥", "Keqiao", "Shaoxing", "Zhejiang",
            ("fabrics", "textile materials", "recycled fibre"),
            ("fabric", "recycled-fibre", "yarn"), "yangtze-textiles", 40),
    Cluster("dongguan", "DG", "东莞", "Dongguan", "Dongguan", "Guangdong",
            ("knitwear OEM", "hardware and accessories", "laser cutting"),
            ("knitwear", "accessories", "hardware"), "gba-fashion-belt", 30),
    Cluster("humen", "HM", "虎门", "Humen", "Dongguan", "Guangdong",
            ("casual wear", "fast-response supply chain"),
            ("casual-wear", "womenswear", "menswear"), "gba-fashion-belt", 36),
    Cluster("changshu", "CS", "常熟", "Changshu", "Suzhou", "Jiangsu",
            ("down jackets",), ("down-jacket", "outerwear"), "jiangsu-zhejiang-apparel", 24),
    Cluster("qingdao", "QD", "青岛", "Qingdao", "Qingdao", "Shandong",
            ("home textiles", "embroidery", "dyeing"),
            ("home-textile", "embroidery"), "shandong-hanfu-belt", 20),
    Cluster("hangzhou", "HZ", "杭州", "Hangzhou", "Hangzhou", "Zhejiang",
            ("silk womenswear",), ("silk", "womenswear"), "yangtze-textiles", 28),
    Cluster("guangzhou", "GZ", "广州", "Guangzhou", "Guangzhou", "Guangdong",
            ("design and creative services",),
            ("design-service", "womenswear"), "gba-fashion-belt", 26),
    Cluster("foshan", "FS", "佛山", "Foshan", "Foshan", "Guangdong",
            ("children's wear manufacturing",), ("childrenswear",), "gba-fashion-belt", 22),
    Cluster("zhongshan", "ZS", "中山", "Zhongshan", "Zhongshan", "Guangdong",
            ("denim processing",), ("denim",), "gba-fashion-belt", 18),
    Cluster("jinjiang", "JJ", "晋江", "Jinjiang", "Quanzhou", "Fujian",
            ("sportswear",), ("sportswear", "footwear"), "fujian-sportswear", 34),
    Cluster("zhili", "ZL", "湖州织里", "Zhili", "Huzhou", "Zhejiang",
            ("children's wear", "green standard"),
            ("childrenswear", "green-certified"), "jiangsu-zhejiang-apparel", 24),
    Cluster("tongxiang", "TX", "桐乡", "Tongxiang", "Jiaxing", "Zhejiang",
            ("wool knitwear", "sweaters"), ("knitwear", "sweater"), "yangtze-textiles", 20),
    Cluster("shantou", "ST", "汕头", "Shantou", "Shantou", "Guangdong",
            ("underwear", "lingerie"), ("lingerie", "underwear"), "gba-fashion-belt", 16),
    Cluster("wujiang", "WJ", "吴江", "Wujiang", "Suzhou", "Jiangsu",
            ("silk", "Song brocade"), ("silk", "brocade"), "yangtze-textiles", 18),
    Cluster("yangzhou", "YZ", "扬州", "Yangzhou", "Yangzhou", "Jiangsu",
            ("outdoor apparel",), ("outdoor", "outerwear"), "jiangsu-zhejiang-apparel", 14),
    Cluster("nantong", "NT", "南通", "Nantong", "Nantong", "Jiangsu",
            ("high-end bedding", "home textiles"),
            ("bedding", "home-textile"), "jiangsu-zhejiang-apparel", 22),
    Cluster("jimo", "JM", "即墨", "Jimo", "Qingdao", "Shandong",
            ("children's wear (older kids)",), ("childrenswear",), "shandong-hanfu-belt", 12),
    Cluster("heze", "HE", "菏泽牡丹区", "Heze (Mudan)", "Heze", "Shandong",
            ("Hanfu",), ("hanfu",), "shandong-hanfu-belt", 10),
)

CLUSTERS_BY_ID: dict[str, Cluster] = {c.id: c for c in CLUSTERS}
PAVILIONS_BY_ID: dict[str, Pavilion] = {p.id: p for p in PAVILIONS}

_ROSTER_SEED = 2026
_NAME_PARTS = ("华", "锦", "盛", "瑞", "丰", "泰", "源", "美", "恒", "达", "新", "雅", "力", "嘉")
_NAME_KINDS = ("服饰", "纺织", "制衣", "针织", "时装", "面料", "实业")


@cache
def booth_roster() -> tuple[Booth, ...]:
    """Every booth of the fair, one exhibitor per booth, in a stable order."""
    rng = random.Random(_ROSTER_SEED)
    pavilion_codes = {p.id: p.code for p in PAVILIONS}
    booths: list[Booth] = []
    for cluster in CLUSTERS:
        for n in range(1, cluster.booths + 1):
            pav = pavilion_codes[cluster.pavilion_id]
            name = (
                cluster.name_zh[:2]
                + rng.choice(_NAME_PARTS)
                + rng.choice(_NAME_PARTS)
                + rng.choice(_NAME_KINDS)
                + "有限公司"
            )
            booths.append(
                Booth(
                    id=f"{pav}-{cluster.code}-{n:03d}",
                    exhibitor_id=f"EX-{cluster.code}-{n:03d}",
                    exhibitor_name=name,
                    cluster_id=cluster.id,
                    pavilion_id=cluster.pavilion_id,
                )
            )
    return tuple(booths)


@cache
def booths_by_id() -> dict[str, Booth]:
    return {b.id: b for b in booth_roster()}


@cache
def booths_by_exhibitor() -> dict[str, Booth]:
    return {b.exhibitor_id: b for b in booth_roster()}
