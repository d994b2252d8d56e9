"""``leadloom demo``: infra up + run + simulate + wait + summary, then tidy up.

Each demo runs in a fresh namespace (``<namespace>-demo-<time>``: its own topics,
consumer groups, Faust app id and database, see ``leadloom.commands.session``), so a
second run reports its own day only and no configured database is ever emptied.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import queries as q
from core.season import parse_season
from core.settings import Settings
from leadloom.commands import demo_dashboards as dashboards_check
from leadloom.commands import demo_intelligence as intelligence
from leadloom.commands.resolve import pairwise
from leadloom.commands.session import pipeline_session
from leadloom.commands.simulate import simulate_and_publish
from leadloom.pipeline import Pipeline
from schemas.reference import CLUSTERS_BY_ID
from schemas.registry import SEASON_BASELINE


class DemoFailed(RuntimeError):
    pass


def run_demo(
    settings: Settings,
    args: argparse.Namespace,
    progress: Callable[[str], None],
    emit_json: Callable[[object], None],
) -> int:
    started = time.monotonic()
    with pipeline_session(settings, "demo", args.workers, progress,
                          allow_server_database=args.allow_server_database) as pipeline:
        run_settings = pipeline.settings
        season_csv = run_settings.data_dir / "previous_season.csv"
        def profiles_in() -> None:
            if not pipeline.wait_idle(args.timeout):
                raise DemoFailed("the supplier profiles were not processed in time")

        sim = simulate_and_publish(run_settings, args.events, args.seed, progress=progress,
                                   surge=args.surge, previous_season_csv=season_csv,
                                   after_profiles=profiles_in)
        _import_season(pipeline, season_csv, progress)
        progress("waiting for the pipeline to store or dead-letter every message")
        last = [0.0]

        def tick(raw: int, derived: int) -> None:
            if time.monotonic() - last[0] > 2:
                last[0] = time.monotonic()
                progress(f"backlog: {raw} raw messages, {max(derived, 0)} rows to store")

        if not pipeline.wait_idle(args.timeout, on_tick=tick):
            raise DemoFailed(f"the pipeline did not finish within {args.timeout:.0f}s")
        # The day is over: judge its last 5-minute windows too, and store the alerts.
        if pipeline.check_surges():
            pipeline.wait_idle(60)
        pipeline.refresh_views()  # the report reads the lead intelligence snapshots
        report = _report(pipeline, run_settings, sim, started)
        truth = report.pop("_truth")
        # after the report: the tail is a fair of its own and changes none of its figures
        report["live_tail"] = dashboards_check.live_tail(pipeline, run_settings, args.seed,
                                                         args.timeout, progress)
        try:
            report["dashboards"] = dashboards_check.check_panels(
                pipeline, run_settings, truth["fair_id"], progress)
        except dashboards_check.DashboardCheckFailed as exc:
            raise DemoFailed(f"a dashboard panel failed: {exc}") from None
        report["elapsed_s"] = round(time.monotonic() - started, 1)
    _print_summary(report)
    intelligence.print_summary(report, _cluster_name)
    if args.json:
        emit_json(report)
    problems = _mismatches(report) + intelligence.mismatches(report, truth)
    if problems:
        raise DemoFailed("counts differ from the ground truth: " + "; ".join(problems))
    return 0


def _report(pipeline: Pipeline, settings: Settings, sim: dict, started: float) -> dict:
    assert pipeline.store is not None
    query, db = pipeline.store.query, settings.clickhouse_database

    def run(named: q.NamedQuery, **values: object) -> Any:
        return q.run(named, query, db, **values)

    truth = json.loads(Path(str(sim["ground_truth"])).read_text())
    stored = run(q.EVENTS_STORED)
    dead = run(q.DEAD_LETTERS_BY_REASON)
    return {
        "namespace": settings.namespace,
        "database": settings.clickhouse_database,  # the run's own: for leadloom sql after it
        "events_produced": sim["events_produced"],
        "duplicates_resent": sim["duplicates_resent"],
        "malformed_sent": sim["malformed_sent"],
        "late_events": sim["late_events"],
        "expected_valid_events": sim["expected_valid_events"],
        "events_stored": sum(stored.values()),
        "events_stored_by_table": stored,
        "dead_letters": sum(dead.values()),
        "dead_letters_by_reason": dead,
        "expected_dead_letters_by_reason": truth["malformed_by_reason"],
        "buyers_resolved": run(q.BUYERS_RESOLVED),
        "expected_distinct_buyers": truth["distinct_buyers"],
        "badges_seen": run(q.BADGES_SEEN),
        **_buyer_quality(run(q.BUYER_OF_ALIAS), truth),
        "leads_by_cluster": run(q.LEADS_BY_CLUSTER),
        "stream_leads_by_cluster": run(q.STREAM_LEADS_BY_CLUSTER),
        "expected_leads_by_cluster": truth["expected_by_cluster"],
        **intelligence.intelligence_report(run, truth),
        "_truth": truth,  # for the checks; popped at once
        "worker_restarts": pipeline.restarts,
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def _import_season(pipeline: Pipeline, path: Path, progress: Callable[[str], None]) -> None:
    """The simulated previous season, imported as an operator would (``leadloom season
    import``), through the store this process owns."""
    assert pipeline.store is not None
    rows = parse_season(path.read_text(encoding="utf-8"), str(path))
    pipeline.store.insert_json_rows(SEASON_BASELINE.name, [json.dumps({
        "season": r.season, "pavilion_id": r.pavilion_id, "cluster_id": r.cluster_id,
        "professional_buyers": r.professional_buyers, "source": str(path)}).encode()
        for r in rows])
    progress(f"imported the previous season {rows[0].season} ({len(rows)} rows)")


def _cluster_name(cluster: str) -> str:
    return CLUSTERS_BY_ID[cluster].name_zh if cluster in CLUSTERS_BY_ID else "?"


def _buyer_quality(buyer_of_alias: dict[str, str], truth: dict) -> dict[str, float]:
    """Pairwise precision/recall of the stream's buyers on the day's registrations and
    inquiries (their event ids are identity records; the simulator knows their buyer)."""
    true_buyer = truth["buyer_of_record"]
    labelled = {a: b for a, b in buyer_of_alias.items() if a in true_buyer}
    p, r = pairwise(labelled, {a: true_buyer[a] for a in labelled})
    f1 = round(2 * p * r / (p + r), 4) if p + r else 0.0
    return {"buyer_records_labelled": len(labelled), "buyer_precision": round(p, 4),
            "buyer_recall": round(r, 4), "buyer_f1": f1}


# A false merge shows one buyer's leads under another's identity: the demo fails on it.
# Recall is reported, not enforced: a day of a few thousand events labels too few records
# for a stable F1 (``leadloom bench --resolve`` measures it on 50,000).
MIN_BUYER_PRECISION = 0.995


def _mismatches(report: dict) -> list[str]:
    problems = []
    if report["buyer_precision"] < MIN_BUYER_PRECISION:
        problems.append(f"buyer precision {report['buyer_precision']} < {MIN_BUYER_PRECISION}")
    if report["events_stored"] != report["expected_valid_events"]:
        problems.append(f"events_stored {report['events_stored']} != "
                        f"expected {report['expected_valid_events']}")
    if report["dead_letters"] != report["malformed_sent"]:
        problems.append(f"dead_letters {report['dead_letters']} != "
                        f"malformed_sent {report['malformed_sent']}")
    expected = report["expected_leads_by_cluster"]
    for cluster, counts in expected.items():
        got = report["leads_by_cluster"].get(cluster, {})
        streamed = report["stream_leads_by_cluster"].get(cluster, {})
        for key, value in counts.items():
            if got.get(key) != value:
                problems.append(f"{cluster}.{key} stored {got.get(key)} != {value}")
            if key in streamed and streamed[key] != value:
                problems.append(f"{cluster}.{key} streamed {streamed[key]} != {value}")
    return problems


def _print_summary(report: dict) -> None:
    print(f"\nLeads per cluster ({report['namespace']}, database {report['database']}):")
    print(f"  {'cluster':<12}{'name':<10}{'scans':>8}{'inquiries':>11}"
          f"{'procurement':>13}{'badges':>8}")
    for cluster, c in sorted(report["leads_by_cluster"].items(),
                             key=lambda kv: -kv[1]["scans"]):
        name = CLUSTERS_BY_ID[cluster].name_zh if cluster in CLUSTERS_BY_ID else "?"
        print(f"  {cluster:<12}{name:<10}{c['scans']:>8}{c['inquiries']:>11}"
              f"{c['procurement_steps']:>13}{c['distinct_badges']:>8}")
    print("\nDead letters by reason:")
    for reason, n in report["dead_letters_by_reason"].items():
        print(f"  {reason:<20}{n:>6}")
    print(
        f"\nproduced {report['events_produced']} messages ({report['duplicates_resent']} resends,"
        f" {report['malformed_sent']} malformed); stored {report['events_stored']} distinct"
        f" events of {report['expected_valid_events']} expected; {report['dead_letters']} dead"
        f" letters; {report['buyers_resolved']} buyers resolved of"
        f" {report['expected_distinct_buyers']} (pairwise precision {report['buyer_precision']},"
        f" recall {report['buyer_recall']}); {report['elapsed_s']} s\n"
    )
    dashboards_check.print_summary(report)
