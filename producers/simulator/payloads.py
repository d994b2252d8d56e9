"""Business content of simulated events: supplier profiles, scan notes, inquiry texts, orders.

Money is built from integer cents so that the JSON decimal strings are exact.
"""

from __future__ import annotations

import random

from producers.simulator.lexicon import PER_CNY
from schemas.reference import Booth, Cluster

CATEGORY_ZH = {
    "fabric": "面料", "recycled-fibre": "再生纤维面料", "yarn": "纱线", "knitwear": "针织衫",
    "accessories": "服饰配件", "hardware": "五金辅料", "casual-wear": "休闲装",
    "womenswear": "女装", "menswear": "男装", "down-jacket": "羽绒服", "outerwear": "外套",
    "home-textile": "家纺", "embroidery": "刺绣", "silk": "真丝", "design-service": "设计服务",
    "childrenswear": "童装", "denim": "牛仔", "sportswear": "运动服", "footwear": "运动鞋",
    "green-certified": "绿色认证童装", "sweater": "毛衫", "lingerie": "内衣",
    "underwear": "家居内衣", "brocade": "宋锦", "outdoor": "户外服装", "bedding": "床品",
    "hanfu": "汉服",
}
# Typical unit price range per category, CNY.
UNIT_CNY = {
    "fabric": (18, 120), "recycled-fibre": (22, 90), "yarn": (30, 160), "knitwear": (45, 260),
    "accessories": (3, 60), "hardware": (1, 25), "down-jacket": (180, 900), "silk": (120, 800),
    "design-service": (2000, 30000), "hanfu": (150, 1200), "brocade": (200, 1500),
    "bedding": (150, 1600), "footwear": (90, 450),
}
DEFAULT_UNIT = (35, 300)
CRAFTS = ("laser cutting", "digital printing", "embroidery", "jacquard weaving", "knitting",
          "garment washing", "quilting", "dyeing", "pleating", "seamless bonding",
          "hand stitching", "3D sampling")
CERTIFICATIONS = ("OEKO-TEX Standard 100", "GRS", "GOTS", "BSCI", "ISO 9001", "Higg FEM",
                  "bluesign")
GREEN_STANDARD = "T/CNTAC green children's wear"
NOTES_ZH = ("要样品", "对再生面料感兴趣", "下周回访", "老客户", "需要报价单", "关注交期",
            "想看秋冬新款", "问了起订量", "有出口需求", "加了微信")
NOTES_EN = ("wants samples", "asked for MOQ", "follow up next week", "price sensitive",
            "interested in custom prints", "needs quote by Friday", "big retailer, hot",
            "asked about certifications")
STEPS = ("sample_request", "quote_request", "cooperation_intent", "purchase_order")
STEP_QUANTITY = {"sample_request": (1, 12), "quote_request": (200, 20_000),
                 "cooperation_intent": (1000, 50_000), "purchase_order": (300, 30_000)}


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def amount(rng: random.Random, category: str, quantity: int, currency: str) -> str:
    lo, hi = UNIT_CNY.get(category, DEFAULT_UNIT)
    unit_cents = rng.randint(lo * 100, hi * 100)
    return money(round(quantity * unit_cents * PER_CNY.get(currency, 1.0)))


def profile(rng: random.Random, booth: Booth, cluster: Cluster) -> dict[str, object]:
    cats = list(cluster.categories)
    k = rng.randint(1, len(cats))
    certs = [c for c in CERTIFICATIONS if rng.random() < 0.15]
    if cluster.id == "zhili" and rng.random() < 0.3:  # the seed's group standard: 30% certified
        certs.append(GREEN_STANDARD)
    return {
        "exhibitor_id": booth.exhibitor_id, "cluster_id": cluster.id,
        "categories": sorted(rng.sample(cats, k), key=cats.index),
        "crafts": rng.sample(CRAFTS, rng.randint(0, 3)),
        "monthly_capacity": rng.randint(5, 500) * 1000, "moq": rng.choice((50, 100, 200, 300,
                                                                            500, 1000, 3000)),
        "lead_time_days": rng.randint(7, 90), "certifications": certs,
    }


def note(rng: random.Random) -> str:
    return rng.choice(NOTES_ZH) if rng.random() < 0.7 else rng.choice(NOTES_EN)


def inquiry_terms(rng: random.Random, cluster: Cluster, currency: str, language: str,
                  company: str | None) -> dict[str, object]:
    """categories, quantity, budget, currency, lead time and the free-text message."""
    cats = list(cluster.categories)
    chosen = rng.sample(cats, 1 if len(cats) == 1 or rng.random() < 0.7 else 2)
    quantity = rng.choice((50, 100, 100, 200)) * rng.randint(1, 60)
    lead = rng.choice((15, 20, 30, 30, 45, 60, 60, 90, 120))
    terms: dict[str, object] = {"categories": chosen}
    if rng.random() < 0.85:
        terms["quantity"] = quantity
    if rng.random() < 0.7:
        terms["budget"] = amount(rng, chosen[0], quantity, currency)
    terms["currency"] = currency
    if rng.random() < 0.8:
        terms["lead_time_days"] = lead
    if language == "zh":
        who = f"我们是{company}，" if company else ""
        what = "、".join(CATEGORY_ZH.get(c, c) for c in chosen)
        text = f"您好，{who}想采购{what}约{quantity}件，希望{lead}天内交货，请发报价和目录。"
    else:
        who = f"This is {company.rstrip('.')}. " if company else ""
        what = " and ".join(c.replace("-", " ") for c in chosen)
        text = (f"Hello, {who}We are sourcing {what} from {cluster.name_en}, about {quantity}"
                f" pcs, delivery within {lead} days. Please send catalogue and price list.")
    if rng.random() < 0.9:
        terms["message"] = text
    terms["language"] = language
    return terms


def procurement_terms(rng: random.Random, step: str, category: str, currency: str
                      ) -> dict[str, object]:
    lo, hi = STEP_QUANTITY[step]
    quantity = rng.randint(lo, hi)
    if step != "sample_request":
        quantity = max(lo, quantity // 50 * 50)
    terms: dict[str, object] = {"category": category, "quantity": quantity}
    if step in ("cooperation_intent", "purchase_order") or rng.random() < 0.4:
        terms["value"] = amount(rng, category, quantity, currency)
    terms["currency"] = currency
    return terms
