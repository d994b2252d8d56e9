"""``leadloom resolve``: the identity engine in batch, and its quality harness.

Batch mode reads JSON lines of buyer records (:class:`schemas.identity.BuyerRecord`: only
``id`` is required, unknown fields are ignored, a line that is not JSON or breaks the
schema is reported with its line number and skipped) and writes ``{"id", "buyer_id"}``
lines, processing records one at a time in input order, exactly as the stream does.
Output is written after the last record, so every line carries the buyer's id after all
merges.
"""

from __future__ import annotations

import collections
import gc
import json
import math
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterable
from typing import IO

from pydantic import ValidationError

from schemas.identity import BuyerRecord
from streams.identity.resolver import Resolver

# Labelled buyer records per simulated event (registrations and inquiries), measured.
_RECORDS_PER_EVENT = 0.0566


def resolve_lines(
    lines: Iterable[str], out: IO[str], warn: Callable[[str], None],
    merges_out: IO[str] | None = None, estimates_out: IO[str] | None = None,
) -> tuple[int, int]:
    """Resolve JSON-lines records; return (records resolved, lines skipped).

    ``estimates_out`` gets one JSON line per estimate of the weighed path's model (when
    it was made, on how many pairs, the match share, the threshold, m and u per field)."""
    resolver = Resolver()
    order: list[str] = []
    skipped = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = BuyerRecord.model_validate_json(line).model_dump()
        except ValidationError as exc:
            warn(f"line {number}: skipped: {_why(exc)}")
            skipped += 1
            continue
        resolver.add(record)
        order.append(record["id"])
    for record_id in order:
        out.write(json.dumps({"id": record_id, "buyer_id": buyer_id(resolver, record_id)},
                             ensure_ascii=False) + "\n")
    if estimates_out is not None:
        for estimate in resolver.weighed.estimates:
            estimates_out.write(json.dumps(estimate) + "\n")
    if merges_out is not None:
        for m in resolver.merges:
            merges_out.write(json.dumps({
                "survivor": f"buyer:{m.survivor}",
                "absorbed": f"buyer:{m.absorbed}", "record_id": m.record_id,
                "evidence": list(m.evidence), "score": m.score,
            }, ensure_ascii=False) + "\n")
    return len(order), skipped


def buyer_id(resolver: Resolver, record_id: str) -> str:
    return f"buyer:{resolver.buyer_of(record_id)}"


def _why(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return f"not JSON ({first['msg']})"
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}" if where else f"{first['msg']}{more}"


def quality(records: int, seed: int = 7) -> dict[str, object]:
    """Pairwise precision/recall/F1 of the resolver on the simulator's labelled records
    (realistic variants per channel), its speed on one core, its memory, and what the
    weighed path did: records weighed, candidates compared per record, estimates, the
    final threshold, records it joined."""
    from producers.simulator import simulate_fair

    sim = simulate_fair(max(1000, int(records / _RECORDS_PER_EVENT)), seed)
    labelled = sim.ground_truth["buyer_records"][:records]
    del sim
    # Keep the collector off the simulated day's millions of objects: measure the resolver.
    gc.collect()
    gc.freeze()
    resolver = Resolver()
    started = time.process_time()
    for rec in labelled:
        resolver.add(rec)
    cpu_s = time.process_time() - started
    predicted = {r["id"]: resolver.buyer_of(r["id"]) for r in labelled}
    truth = {r["id"]: r["buyer"] for r in labelled}
    p, r = pairwise(predicted, truth)
    buyers = len(set(truth.values()))
    weighed = resolver.weighed
    model = weighed.model
    return {
        "records": len(labelled),
        "true_buyers": buyers,
        "resolved_buyers": len(set(predicted.values())),
        "merges": len(resolver.merges),
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
        "records_per_s": round(len(labelled) / cpu_s, 1) if cpu_s else None,
        "seed": seed,
        "weighed_records": weighed.records,
        "candidates_per_weighed_record": round(weighed.candidates / max(1, weighed.records), 2),
        "estimates": len(weighed.estimates),
        "threshold": None if model is None or math.isinf(model.threshold)
        else round(model.threshold, 2),
        "match_share": None if model is None else round(model.match_share, 5),
        "weighed_merges": sum(1 for m in resolver.merges if m.evidence[0] == "weighed"),
        "memory_mb_per_100k_buyers": _memory_per_100k_buyers(labelled[:20_000]),
    }


def _memory_per_100k_buyers(sample: list[dict]) -> float:
    """Resolver state per 100k buyers, from a traced run on a sample (tracing is slow)."""
    tracemalloc.start()
    resolver = Resolver()
    for rec in sample:
        resolver.add(rec)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    buyers = len({resolver.buyer_of(r["id"]) for r in sample}) or 1
    return round(current / 2**20 * 100_000 / buyers, 1)


def pairwise(predicted: dict[str, str], truth: dict[str, str]) -> tuple[float, float]:
    """Pairwise precision and recall of a clustering against the true one."""
    def pairs(counts: Iterable[int]) -> int:
        return sum(n * (n - 1) // 2 for n in counts)

    both = pairs(collections.Counter((predicted[i], truth[i]) for i in truth).values())
    said = pairs(collections.Counter(predicted.values()).values())
    real = pairs(collections.Counter(truth.values()).values())
    return (both / said if said else 1.0), (both / real if real else 1.0)


def warn_stderr(message: str) -> None:
    print(f"leadloom: {message}", file=sys.stderr)
