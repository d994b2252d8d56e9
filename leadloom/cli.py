"""The ``leadloom`` command (the composition root: the only glue that imports upward).

Every subcommand has ``--help``, prints progress on stderr, exits non-zero with a
one-line reason on failure and, with ``--json``, prints one JSON object as the last
line of stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from core.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]
_FAUST_LEVELS = {"CRITICAL": "crit", "ERROR": "error", "WARNING": "warn", "INFO": "info",
                 "DEBUG": "debug"}


def progress(message: str) -> None:
    print(f"leadloom: {message}", file=sys.stderr, flush=True)


def emit_json(payload: object) -> None:
    print(json.dumps(payload, ensure_ascii=False, default=str), flush=True)


def _infra(args: argparse.Namespace, settings: Settings) -> int:
    from infra import kafka_local
    from leadloom.commands.session import local_kafka

    kafka = local_kafka(settings)
    if args.infra_command == "fetch":
        path = kafka_local.fetch_jars(kafka, progress=progress)
        progress(f"Kafka {settings.kafka_version} jars ready in {path}")
    elif args.infra_command == "up":
        state = kafka_local.up(kafka, brokers=args.brokers, progress=progress)
        _print_status(state, args.json)
    elif args.infra_command == "down":
        stopped = kafka_local.down(kafka, wipe=args.wipe)
        wiped = " and wiped their storage" if args.wipe else ""
        progress(f"stopped {len(stopped)} broker(s){wiped}")
        if args.json:
            emit_json({"stopped_pids": stopped})
    else:
        _print_status(kafka_local.status(kafka), args.json)
    return 0


def _print_status(state: dict, as_json: bool) -> None:
    if as_json:
        emit_json(state)
        return
    print(f"bootstrap: {state.get('bootstrap')}")
    for b in state.get("brokers", []):
        alive = "up" if b.get("alive") else "down"
        print(f"  broker {b['node_id']}: {alive:4} port {b['port']} "
              f"controller {b['controller_port']} pid {b.get('pid') or '-'}")
    topics = state.get("topics") or {}
    if topics:
        print(f"topics ({len(topics)}):")
        for name, partitions in sorted(topics.items()):
            print(f"  {name}  partitions={partitions}")


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from leadloom.commands.simulate import simulate_and_publish

    season_csv = Path(args.previous_season) if args.previous_season else None
    report = simulate_and_publish(settings, args.events, args.seed, rate=args.rate,
                                  truth_path=args.truth, progress=progress, surge=args.surge,
                                  previous_season_csv=season_csv,
                                  scan_v2_share=args.scan_v2_share, batch=args.batch)
    if args.json:
        emit_json(report)
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from leadloom.pipeline import Pipeline

    Pipeline(settings, workers=args.workers, progress=progress).run_forever()
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app import run_worker

    level = args.loglevel or _FAUST_LEVELS.get(settings.log_level.upper(), "warn")
    run_worker(settings, loglevel=level)
    return 0


def _sql(args: argparse.Namespace, settings: Settings) -> int:
    from core.owner import read_query

    credentials = None
    if args.user:
        password = os.environ.get("LEADLOOM_PASSWORD")
        if not password:
            raise SystemExit(f"leadloom: error: --user {args.user} needs its password in"
                             " LEADLOOM_PASSWORD")
        credentials = (args.user, password)
    result = read_query(settings, args.query, credentials=credentials)
    if args.json:
        emit_json({"columns": result.columns, "rows": result.rows})
        return 0
    print("\t".join(result.columns))
    for row in result.rows:
        print("\t".join("" if v is None else str(v) for v in row))
    return 0


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from leadloom.commands.report import run_report

    result = run_report(settings, args.cluster, Path(args.out), lang=args.lang, fair=args.fair,
                        progress=progress)
    if not result["has_data"]:
        progress(f"no data for {result['cluster']} at fair {result['fair'] or '(none)'}:"
                 " the report says so")
    print(result["html"])
    print(result["pdf"])
    progress(f"report written in {result['elapsed_s']} s")
    if args.json:
        emit_json(result)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from leadloom.commands.demo import run_demo

    if args.surge is not None and args.surge.strip().lower() == "none":
        args.surge = None
    return run_demo(settings, args, progress=progress, emit_json=emit_json)


def _offered_rates(text: str) -> list[float]:
    """``--rates``: comma-separated positive events/s."""
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not rates or any(not r > 0 for r in rates):
        raise argparse.ArgumentTypeError(f"rates must be positive events/s: {text!r}")
    return rates


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    if args.resolve:
        from leadloom.commands.resolve import quality

        result = quality(args.records, args.seed)
        print(f"precision {result['precision']}  recall {result['recall']}  f1 {result['f1']}  "
              f"{result['records_per_s']} records/s  "
              f"{result['memory_mb_per_100k_buyers']} MiB per 100k buyers  "
              f"{result['candidates_per_weighed_record']} candidates per weighed record  "
              f"threshold {result['threshold']}")
        if args.json:
            emit_json(result)
        return 0
    if args.views:
        from leadloom.commands import bench_views

        result = bench_views.run(settings, args.view_events, progress,
                                 allow_server_database=args.allow_server_database)
        print(f"{'view or named query':<40}{'p50 ms':>10}{'best ms':>10}{'refresh ms':>12}")
        for name, ms in {**result["views_p50_ms"], **result["queries_p50_ms"]}.items():
            best = {**result["views_ms"], **result["queries_ms"]}[name]
            refresh = result["refresh_ms"].get(name, "")
            print(f"{name:<40}{ms:>10}{best:>10}{refresh:>12}")
        print(f"every view under {bench_views.BAR_MS:.0f} ms (p50):"
              f" {'yes' if result['under_200ms'] else 'no'}; one refresh of every snapshot"
              f" {result['refresh_s']} s")
        if args.json:
            emit_json(result)
        return 0
    if args.dashboards:
        from leadloom.commands import dashboards_bench as dash_bench

        result = dash_bench.run(settings, args.view_events, progress,
                                allow_server_database=args.allow_server_database)
        print(f"{'dashboard/panel':<70}{'p50 ms':>10}")
        for name, ms in result["panels_p50_ms"].items():
            print(f"{name:<70}{ms:>10}")
        slowest = result["slowest"]
        print(f"slowest panel: {slowest['panel']} {slowest['p50_ms']} ms (bar"
              f" {dash_bench.PANEL_BAR_MS:.0f}: {'yes' if result['panel_under_300ms'] else 'no'});"
              f" the wall's queries together: {result['wall_ms']} ms (bar"
              f" {dash_bench.WALL_BAR_MS:.0f}: {'yes' if result['wall_under_1500ms'] else 'no'})")
        if args.json:
            emit_json(result)
        return 0
    if args.unique_buyers:
        from leadloom.commands import bench_buyers

        result = bench_buyers.run(settings, args.buyer_events, args.buyers, 20, progress,
                                  allow_server_database=args.allow_server_database)
        for key, value in result.items():
            print(f"{key:<40}{value}")
        if args.json:
            emit_json(result)
        return 0
    from leadloom.commands.bench import run_bench

    return run_bench(settings, args, progress=progress, emit_json=emit_json)


def _config(args: argparse.Namespace, settings: Settings) -> int:
    from leadloom.commands.config import effective_config, render

    config = effective_config(settings)
    if args.json:
        emit_json(config)
    else:
        print(render(config))
    return 0


def _resolve(args: argparse.Namespace, settings: Settings) -> int:
    from leadloom.commands.resolve import resolve_lines, warn_stderr

    source = open(args.input, encoding="utf-8") if args.input else sys.stdin
    sink = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    merges = open(args.merges, "w", encoding="utf-8") if args.merges else None
    estimates = open(args.estimates, "w", encoding="utf-8") if args.estimates else None
    try:
        resolved, skipped = resolve_lines(source, sink, warn_stderr, merges, estimates)
    finally:
        for handle in (source, sink, merges, estimates):
            if handle not in (None, sys.stdin, sys.stdout):
                handle.close()
    progress(f"resolved {resolved} records ({skipped} malformed lines skipped)")
    return 0


def _rates(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from leadloom.commands.rates import load_file

    result = load_file(settings, Path(args.file), progress)
    if args.json:
        emit_json(result)
    return 0


def _season(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from leadloom.commands.season import import_file

    result = import_file(settings, Path(args.file), progress)
    if args.json:
        emit_json(result)
    return 0


def _dashboards(args: argparse.Namespace, settings: Settings) -> int:
    if args.dashboards_command == "build":
        from pathlib import Path

        from leadloom.commands.dashboards import build

        result = build(settings, Path(args.out), progress)
    else:
        from leadloom.commands.dashboards_push import run_push

        result = run_push(settings, args.url, args.token or "", progress,
                          admin_user=args.admin_user or "",
                          admin_password=args.admin_password or "", org=args.org,
                          datasource_host=args.datasource_host,
                          datasource_port=args.datasource_port,
                          not_provisioned=args.not_provisioned,
                          set_passwords=args.set_passwords)
        for kind in ("orgs", "datasources", "folders", "dashboards", "playlists"):
            outcome = result.get(kind) or {}
            print(f"{kind:<12} " + ", ".join(f"{len(outcome.get(o, []))} {o}" for o in
                                             ("created", "updated", "unchanged")))
    if args.json:
        emit_json(result)
    return 0


def _users(args: argparse.Namespace, settings: Settings) -> int:
    from leadloom.commands import users

    if args.users_command == "add":
        result = users.add(settings, args.name, args.role, args.cluster,
                           lambda: users.read_password(args.password_stdin), progress)
    elif args.users_command == "remove":
        result = users.remove(settings, args.name, progress)
    else:
        result = users.list_users(settings)
        if not args.json:
            for row in result["users"]:
                print(f"{row['name']:<32}{row['role']:<12}{row['cluster_id'] or ''}")
            progress(f"{len(result['users'])} user(s) in {result['file']}")
    if args.json:
        emit_json(result)
    return 0


def _access(args: argparse.Namespace, settings: Settings) -> int:
    from leadloom.commands.access_sql import build, render

    model = build(args.database or settings.clickhouse_database)
    locked = sum(1 for u in model.users if u["password"] == "locked")
    progress(f"{len(model.statements)} statements: {len(model.users)} users ({locked} locked,"
             f" no password variable), {model.row_policies} delegation row policies")
    if args.json:
        emit_json({"database": model.database, "users": list(model.users),
                   "row_policies": model.row_policies, "statements": list(model.statements)})
    else:
        print(render(model), end="")
    return 0


def _groups(args: argparse.Namespace, settings: Settings) -> int:
    from leadloom.commands import groups

    if args.groups_command != "reset":
        result = groups.list_groups(settings)
        if not args.json:
            for g in result["groups"]:
                members = len(g["members"])
                print(f"{g['group']}  state={g['state'] or '-'} members={members} lag={g['lag']}"
                      + ("" if g["exists"] else "  (no commits yet)"))
                for r in g["partitions"]:
                    committed = "-" if r["committed"] is None else r["committed"]
                    print(f"  {r['topic']}[{r['partition']}]  committed={committed}"
                          f" end={r['end']} lag={r['lag']}")
        if args.json:
            emit_json(result)
        return 0
    from leadloom.commands.audit import Result, audited
    from schemas.registry import OpsCommand

    params = {"group": args.group, "to_time": args.to_time, "topics": args.topic}
    with audited(settings, OpsCommand.GROUPS_RESET.value, params, args.dry_run) as audit:
        plan = groups.plan_reset(settings, args.group, groups.parse_time(args.to_time),
                                 args.topic or None)
        for r in plan["partitions"]:
            current = "-" if r["current"] is None else r["current"]
            print(f"{r['topic']}[{r['partition']}]: {current} -> {r['new']}",
                  file=sys.stderr if args.json else sys.stdout)
        audit.counts["partitions"] = len(plan["partitions"])
        result = {**plan, "dry_run": args.dry_run, "applied": False}
        if not args.dry_run:
            if not args.yes:
                if not sys.stdin.isatty():
                    raise groups.GroupsError("no terminal to confirm on: pass --yes to reset"
                                             f" group {args.group!r}")
                print(f"reset {len(plan['partitions'])} partition(s) of {args.group}? [y/N] ",
                      end="", file=sys.stderr, flush=True)
                if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                    progress("reset cancelled: nothing changed")
                    audit.result, audit.detail = Result.REFUSED, "cancelled at the prompt"
                    if args.json:
                        emit_json(result)
                    return 1
            groups.apply_reset(settings, plan)
            result["applied"] = True
            progress(f"group {args.group}: {len(plan['partitions'])} partition(s) reset")
        else:
            progress("dry run: nothing changed")
    if args.json:
        emit_json(result)
    return 0


def _deadletters(args: argparse.Namespace, settings: Settings) -> int:
    from leadloom.commands import deadletters as dl

    if args.deadletters_command == "show":
        shown = dl.show(settings, args.ref)
        if args.json:
            emit_json(shown)
            return 0
        for letter in shown["dead_letters"]:
            for name in ("ref", "source", "reason", "detail", "event_id", "raw_size",
                         "raw_sha256", "failed_at", "ingested_at"):
                print(f"{name:<12}{dl.safe_text(str(letter[name]))}")
            raw = letter["raw"]
            where = "raw archive" if raw["from"] == "raw_archive" else "dead letter"
            print(f"raw         {raw['size']:,} bytes from the {where}"
                  f" ({'whole' if raw['whole'] else 'a prefix'}), {raw['encoding']}"
                  + (", preview truncated" if raw["truncated"] else ""))
            print(raw["text"] if raw["encoding"] == "utf-8" else raw["hex"])
            for r in letter["retries"]:
                print(f"retry       {r['retried_at']} {r['outcome']}"
                      f" {dl.safe_text(r['published_to'] or r['reason'])}"
                      f" (audit {r['audit_id']})")
            if not letter["retries"]:
                print("retry       never retried")
        return 0
    limit = args.limit if args.limit is not None else (
        dl.DEFAULT_LIMIT if args.deadletters_command == "list" else None)  # retry: all
    filters = dl.make_filters(settings, args.reason, args.topic, args.since, args.until, limit)
    if args.deadletters_command == "list":
        listed = dl.list_dead_letters(settings, filters)
        if args.json:
            emit_json(listed)
            return 0
        for d in listed["dead_letters"]:
            print(f"{d['ref']}  {d['reason']}  {d['failed_at']}  {d['raw_size']:,} B"
                  f"  {dl.safe_text(d['event_id']) or '-'}  [{d['status']}]"
                  f"  {dl.safe_text(d['detail'])}")
        progress(f"{listed['count']} dead letter(s) listed"
                 + "".join(f", {n} {s}" for s, n in sorted(listed["by_status"].items())))
        return 0
    from leadloom.commands.deadletters_retry import run_retry

    def confirm(n: int) -> str | None:
        if args.yes:
            return None
        if not sys.stdin.isatty():
            return "no terminal to confirm on: pass --yes to retry (or --dry-run)"
        print(f"re-validate {n} dead letter(s) and republish those that pass? [y/N] ",
              end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() in ("y", "yes"):
            return None
        return "retry cancelled: nothing changed"

    result = run_retry(settings, filters, dry_run=args.dry_run, confirm=confirm,
                       progress=progress)
    if result["refused"] and not args.json:
        raise dl.DeadLetterError(result["refused"])
    if result["refused"]:
        progress(result["refused"])
    elif not args.json:
        for item in result["items"]:
            print(f"{item['ref']}  {item['outcome']}"
                  f"  {dl.safe_text(item['published_to'] or item['reason'])}")
    if args.json:
        emit_json(result)
    return 130 if result["interrupted"] else 1 if result["refused"] else 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    if args.replay_command == "republish":
        return _republish(args, settings)
    if args.replay_command == "reprocess":
        return _reprocess(args, settings)
    raise SystemExit(f"leadloom: error: unknown replay action {args.replay_command!r}")


def _reprocess(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    from leadloom.commands import reprocess as rp
    from leadloom.commands.groups import parse_time

    def when(text: str | None, flag: str) -> datetime | None:
        if text is None:
            return None
        value = parse_time(text)
        if isinstance(value, str):
            raise SystemExit(f"leadloom: error: {flag} takes a time, not {value!r}")
        return value

    request = rp.Request(args.source, when(args.since, "--from"), when(args.until, "--to"),
                         args.into, args.swap, args.dry_run)

    def confirm(report: dict) -> bool:
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise rp.ReprocessError("no terminal to confirm the swap on: pass --yes; the"
                                    f" rebuild stays in {report['shadow_database']}")
        print(f"{report['diff']['differences']} difference(s). Swap"
              f" {report['shadow_database']} in as {settings.clickhouse_database} and hand"
              " the stream state over? [y/N] ", end="", file=sys.stderr, flush=True)
        return sys.stdin.readline().strip().lower() in ("y", "yes")

    try:
        report = rp.run_reprocess(settings, request, progress, confirm)
    except KeyboardInterrupt:
        progress("interrupted: the unfinished shadow database was dropped; nothing swapped")
        return 130
    out = sys.stderr if args.json else sys.stdout
    if not request.dry_run:
        build, diff = report["build"], report["diff"]
        print(f"rebuilt {report['shadow_database']} from {report['source']}:"
              f" {build['messages']:,} messages in {build['elapsed_s']} s"
              f" ({build['events_per_s']:,}/s), peak RSS {build['peak_rss_mib']} MiB", file=out)
        for t in diff["tables"]:
            mark = "" if not (t.get("only_live") or t.get("only_shadow")) else "  <- differs"
            extra = (f" only live {t['only_live']}, only shadow {t['only_shadow']}"
                     if "only_live" in t else f" ({t['compared']})")
            print(f"  {t['table']}: live {t['live_rows']}, shadow {t['shadow_rows']},{extra}{mark}",
                  file=out)
        unequal = [m["metric"] for m in diff["metrics"] if not m["equal"]]
        print(f"metrics: {len(diff['metrics']) - len(unequal)} equal"
              + (f", differ: {', '.join(unequal)}" if unequal else ""), file=out)
        print(f"differences: {diff['differences']}"
              + ("; swapped in" if report.get("swapped") else ""), file=out)
    if args.json:
        emit_json(report)
    return 0


def _republish(args: argparse.Namespace, settings: Settings) -> int:
    from leadloom.commands import republish as rp
    from leadloom.commands.republish_select import Selection

    selection = Selection.parse(args.since, args.until, args.cluster, args.type)

    def confirm(plan: dict) -> str | None:
        if args.yes:
            return None
        if not sys.stdin.isatty():
            return "no terminal to confirm on: pass --yes to republish"
        print(f"republish {plan['selected']} event(s) to the raw topics of"
              f" {settings.namespace}? [y/N] ", end="", file=sys.stderr, flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return "cancelled at the prompt: nothing sent"
        return None

    try:
        result = rp.republish(settings, selection, dry_run=args.dry_run, confirm=confirm,
                              progress=progress)
    except rp.Interrupted as stop:
        if args.json:
            emit_json(stop.result)
        return 130
    out = sys.stderr if args.json else sys.stdout
    for topic, n in result["by_topic"].items():
        print(f"{topic}: {n} event(s)", file=out)
    skipped = ", ".join(f"{n} {why}" for why, n in result["skipped"].items())
    print(f"selected {result['selected']}, sent {result['sent']}, skipped: {skipped}",
          file=out)
    if result["result"] == "refused":
        progress(result["reason"])
    if args.json:
        emit_json(result)
    return 1 if result["result"] == "refused" else 0


DEMO_SURGE = "keqiao@14:30"
SURGE_HELP = ("CLUSTER@HH:MM: add a burst of scans and inquiries for one cluster from that"
              " local fair time (e.g. keqiao@14:30)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadloom",
        description="Streaming lead and order intelligence for trade fairs "
        "(Kafka -> Faust -> ClickHouse -> Grafana). Configuration: LEADLOOM_* "
        "environment variables or .env (e.g. LEADLOOM_KAFKA_BOOTSTRAP, "
        "LEADLOOM_CLICKHOUSE_DSN, LEADLOOM_DATA_DIR, LEADLOOM_NAMESPACE).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    infra = sub.add_parser("infra", help="local Kafka broker(s): fetch, up, down, status")
    infra_sub = infra.add_subparsers(dest="infra_command", required=True, metavar="ACTION")
    infra_sub.add_parser("fetch", help="resolve the Kafka broker jars from Maven Central")
    up = infra_sub.add_parser("up", help="start the local broker(s) (idempotent)")
    up.add_argument("--brokers", type=int, choices=(1, 3), default=1)
    up.add_argument("--json", action="store_true", help="print the status as JSON")
    down = infra_sub.add_parser("down", help="stop the local broker(s)")
    down.add_argument("--wipe", action="store_true", help="also delete the brokers' storage")
    down.add_argument("--json", action="store_true")
    status = infra_sub.add_parser("status", help="brokers, ports, pids, topics and partitions")
    status.add_argument("--json", action="store_true")
    infra.set_defaults(handler=_infra)

    sim = sub.add_parser("simulate", help="publish a simulated fair day to the raw topics")
    sim.add_argument("--events", type=int, default=10_000, help="distinct valid events")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--rate", type=float, default=None, help="messages per second (default: max)")
    sim.add_argument("--truth", default=None,
                     help="ground-truth file (default: DATA_DIR/ground_truth.json)")
    sim.add_argument("--surge", default=None, metavar="CLUSTER@HH:MM", help=SURGE_HELP)
    sim.add_argument("--previous-season", default=None, metavar="FILE",
                     help="also write a smaller, seeded previous season's professional buyers"
                          " per pavilion and cluster to FILE (the CSV 'leadloom season"
                          " import' reads)")
    sim.add_argument("--scan-v2-share", type=float, default=0.0, metavar="SHARE",
                     help="send this share (0..1) of the scans as booth_scan version 2"
                          " (scanner_id, dwell_seconds); default 0")
    sim.add_argument("--batch", type=int, default=1, metavar="N",
                     help="up to N events per Kafka message, as NDJSON, batched per raw topic"
                          " and partition as a gateway would (within the message size limit;"
                          " malformed events travel inside batches too); default 1: one event"
                          " per message")
    sim.add_argument("--json", action="store_true")
    sim.set_defaults(handler=_simulate)

    run = sub.add_parser("run", help="stream workers + sink in the foreground until interrupted")
    run.add_argument("--workers", type=int, default=1, help="stream worker processes")
    run.set_defaults(handler=_run)

    worker = sub.add_parser("worker", help="one Faust stream worker (run starts these for you)")
    worker.add_argument("--loglevel", default=None, choices=sorted(set(_FAUST_LEVELS.values())),
                        help="default: from LEADLOOM_LOG_LEVEL")
    worker.set_defaults(handler=_worker)

    sql = sub.add_parser(
        "sql", help="run one read query on the configured store",
        description=(
            "Runs one statement (SELECT, DESCRIBE, SHOW or EXISTS) read-only: the engine runs it\n"
            "with readonly=1 and stops it at the time limit (core.reads.READ_TIME_LIMIT_S,\n"
            "30 s). Writes, DDL, table functions that reach files or the network, INTO OUTFILE,\n"
            "FORMAT and SETTINGS overrides are refused with a one-line reason. While 'leadloom\n"
            "run' owns the embedded store the query goes through its ClickHouse HTTP interface\n"
            "(as the organizer, or --user NAME with the password in LEADLOOM_PASSWORD: that\n"
            "user's scope, as a delegation member's client would read); a run that does not\n"
            "answer is reported as such, and the store is not opened behind its back."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sql.add_argument("query", help='e.g. "SELECT count() FROM leadloom.scans FINAL"')
    sql.add_argument("--user", default=None,
                     help="read as this configured user (password: env LEADLOOM_PASSWORD)")
    sql.add_argument("--json", action="store_true")
    sql.set_defaults(handler=_sql)

    report = sub.add_parser(
        "report", help="a delegation's post-fair report: a self-contained HTML page and a PDF",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Writes report-<cluster>-<fair>.html (charts embedded, no external link) and\n"
            ".pdf into --out (created): traffic per day and hour, top booths, unique resolved\n"
            "buyers, hot leads (masked names only), the cluster's funnel, its matches and its\n"
            "momentum against the fair. Reads only what the cluster's delegation may read.\n"
            "A cluster without data gets a report that says so; an unknown cluster is an\n"
            "error. Prints the two paths; --json adds the figures shown and elapsed_s."
        ),
    )
    report.add_argument("--cluster", required=True, help="cluster id (e.g. keqiao)")
    report.add_argument("--lang", choices=("zh", "en"), default="zh",
                        help="titles and labels in Chinese (default) or English")
    report.add_argument("--fair", default=None,
                        help="fair id (default: the cluster's fair with the latest data)")
    report.add_argument("--out", required=True, help="directory of the two files")
    report.add_argument("--json", action="store_true")
    report.set_defaults(handler=_report)

    demo = sub.add_parser(
        "demo", help="start what is missing, simulate a fair day, run the pipeline, summarise"
    )
    demo.add_argument("--events", type=int, default=20_000, help="distinct valid events")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--workers", type=int, default=1)
    demo.add_argument("--timeout", type=float, default=900, help="seconds to wait for the pipeline")
    demo.add_argument("--surge", default=DEMO_SURGE, metavar="CLUSTER@HH:MM",
                      help=SURGE_HELP + "; the demo fails unless that cluster ranks first in"
                      f" momentum within one 5-minute window of the start (default {DEMO_SURGE},"
                      " so the wall's surge panel has an alert; 'none': a day without)")
    demo.add_argument("--allow-server-database", action="store_true",
                      help="with a server DSN (LEADLOOM_CLICKHOUSE_DSN=http...): create the"
                           " demo's own database there (refused without this flag)")
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=_demo)

    bench = sub.add_parser("bench", help="end-to-end throughput and latency vs a bare consumer")
    bench.add_argument("--events", type=int, default=50_000, help="events for the throughput run")
    bench.add_argument("--rates", type=_offered_rates, default=[1000.0, 5000.0],
                       metavar="R[,R...]",
                       help="offered events/s of the latency runs, one run each"
                            " (default 1000,5000)")
    bench.add_argument("--latency-seconds", type=float, default=20,
                       help="length of each latency run")
    bench.add_argument("--batch", type=int, default=1, metavar="N",
                       help="events per Kafka message, NDJSON (default 1: one a message)")
    bench.add_argument("--workers", type=int, default=1)
    bench.add_argument("--allow-server-database", action="store_true",
                       help="with a server DSN: create the benchmark's own database there"
                            " (refused without this flag)")
    bench.add_argument("--resolve", action="store_true",
                       help="measure identity resolution alone on labelled simulated buyers")
    bench.add_argument("--records", type=int, default=50_000, help="labelled records (--resolve)")
    bench.add_argument("--seed", type=int, default=7,
                       help="the simulated fair's seed (--resolve)")
    bench.add_argument("--unique-buyers", action="store_true",
                       help="time unique-buyer metrics that honour merges: query-time resolution"
                            " through the alias mapping vs recomputing affected aggregates")
    bench.add_argument("--buyer-events", type=int, default=1_000_000,
                       help="buyer events in the fair (--unique-buyers)")
    bench.add_argument("--buyers", type=int, default=60_000,
                       help="identity records in the fair (--unique-buyers)")
    bench.add_argument("--views", action="store_true",
                       help="on a fair built directly in a store of its own (no Kafka):"
                            " time one refresh of every lead intelligence snapshot, then"
                            " reading every view and named query")
    bench.add_argument("--dashboards", action="store_true",
                       help="on the same kind of fair as --views: time every panel query of"
                            " every dashboard (macros expanded), the slowest and the wall's"
                            " total against the bars (300 ms, 1.5 s)")
    bench.add_argument("--view-events", type=int, default=1_000_000,
                       help="valid events in that fair (--views, --dashboards)")
    bench.add_argument("--json", action="store_true")
    bench.set_defaults(handler=_bench)

    config = sub.add_parser(
        "config", help="the effective configuration (LEADLOOM_* settings, derived names)",
        description="Prints every setting with its LEADLOOM_* variable and source (env, .env,"
        " default), then the derived values: resolved ClickHouse DSN, Faust app id, sink"
        " group, topics with partitions and keys. Passwords are masked.",
    )
    config.add_argument("--json", action="store_true")
    config.set_defaults(handler=_config)

    resolve = sub.add_parser(
        "resolve",
        help="resolve buyer records to buyer ids (batch mode of the stream's engine)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Reads JSON lines, one buyer record per line, processes them one at a time in\n"
            "input order exactly as the stream does, and writes {\"id\", \"buyer_id\"} lines\n"
            "(after the last record, so ids reflect every merge).\n\n"
            "Record fields (all optional except id; unknown fields are ignored; numbers are\n"
            "taken as text):\n"
            "  id, full_name, given_name, family_name, company, email, phone, wechat,\n"
            "  country (ISO 3166 alpha-2, the default region for phone numbers), province,\n"
            "  city, address, postcode, badge_id (a fair badge: one person, matches outright)\n\n"
            "A line that is not JSON, lacks id, or holds an object, array or true/false in a\n"
            "field is malformed: reported on stderr with its line number and skipped.\n\n"
            "Records that share an identifier join by rules; records that share none are\n"
            "weighed field by field (Fellegi-Sunter, m and u estimated from the input itself\n"
            "as it is read, re-estimated as it grows) and join above a threshold chosen for\n"
            "precision; every merge carries its evidence and score (--merges)."
        ),
    )
    resolve.add_argument("--in", dest="input", default=None, help="input file (default stdin)")
    resolve.add_argument("--out", dest="output", default=None, help="output file (default stdout)")
    resolve.add_argument("--merges", default=None, help="also write the merges (JSON lines)")
    resolve.add_argument("--estimates", default=None,
                         help="also write the weighed path's model at each estimate: pairs,"
                              " match share, threshold, m and u per field (JSON lines)")
    resolve.set_defaults(handler=_resolve)

    rates = sub.add_parser(
        "rates", help="currency rates for values in CNY: load an operator's CSV",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "rates load FILE: a CSV with the header currency,cny_per_unit,valid_from (CNY per\n"
            "one unit, from valid_from on; a date is 00:00 UTC). The whole file is checked\n"
            "first: any bad line and nothing is loaded (exit 1, the line named). A (currency,\n"
            "valid_from) loaded again replaces its rate; others are added. The product ships\n"
            "reference rates (infra/clickhouse/rates/cny_rates.csv). Refused while 'leadloom\n"
            "run' owns the embedded store: stop it first."
        ),
    )
    rates_sub = rates.add_subparsers(dest="rates_command", required=True)
    rates_load = rates_sub.add_parser("load", help="check and load a rates CSV")
    rates_load.add_argument("file", help="the rates CSV")
    rates_load.add_argument("--json", action="store_true")
    rates.set_defaults(handler=_rates)

    season = sub.add_parser(
        "season", help="the previous season's professional buyers: import a CSV",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "season import FILE: a CSV with the header\n"
            "season,pavilion_id,cluster_id,professional_buyers (one row per pavilion and\n"
            "cluster of that season). The whole file is checked first: any bad line and\n"
            "nothing is imported (exit 1, the line named). Importing a (season, pavilion,\n"
            "cluster) again replaces its count. The season_comparison view compares the\n"
            "fair's professional buyers with the latest imported season. Refused while\n"
            "'leadloom run' owns the embedded store: stop it first."
        ),
    )
    season_sub = season.add_subparsers(dest="season_command", required=True)
    season_import = season_sub.add_parser("import", help="check and import a season CSV")
    season_import.add_argument("file", help="the season CSV")
    season_import.add_argument("--json", action="store_true")
    season.set_defaults(handler=_season)

    dashboards = sub.add_parser(
        "dashboards", help="Grafana dashboards as code: build the provisioning tree, push",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "build: write the dashboards (organizer wall, ops, one per delegation) and the\n"
            "Grafana file provisioning (ClickHouse data source, a provider per folder) under\n"
            "--out. Titles follow LEADLOOM_DASHBOARD_LANGUAGE (zh-en: Chinese first; en);\n"
            "panel SQL reads LEADLOOM_CLICKHOUSE_DATABASE. A dashboard breaking the project's\n"
            "rules (panel ids, grid, macros, variables, formats) fails the build.\n"
            "push: bring an existing Grafana in line with the same build, one org per\n"
            "audience (organizers, ops, each delegation): the org (server admin only), its\n"
            "data source as its own ClickHouse user (password from\n"
            "LEADLOOM_GRAFANA_CH_PASSWORD_<USER>), folder and dashboards, the wall playlist;\n"
            "idempotent, prints what changed."
        ),
    )
    dash_sub = dashboards.add_subparsers(dest="dashboards_command", required=True,
                                         metavar="ACTION")
    dash_build = dash_sub.add_parser("build", help="write the dashboards and provisioning tree")
    dash_build.add_argument("--out", default="infra/grafana",
                            help="directory of the tree (default: infra/grafana)")
    dash_build.add_argument("--json", action="store_true")
    dash_push = dash_sub.add_parser("push", help="push the build to an existing Grafana")
    dash_push.add_argument("--url", required=True, help="Grafana's base URL, http(s)://...")
    dash_push.add_argument("--admin-user", default=None,
                           help="Grafana server admin (every org, creates them); default:"
                                " LEADLOOM_GRAFANA_ADMIN_USER")
    dash_push.add_argument("--admin-password", default=None,
                           help="its password; default (better: an argument shows in the"
                                " process list): LEADLOOM_GRAFANA_ADMIN_PASSWORD")
    dash_push.add_argument("--token", default=None,
                           help="service account token (role Admin) of the --org's org,"
                                " without an admin; default: LEADLOOM_GRAFANA_TOKEN")
    dash_push.add_argument("--org", default=None,
                           help="push one org only: organizers, ops or a cluster id")
    dash_push.add_argument("--datasource-host", default=None,
                           help="host the data sources read (default 127.0.0.1: the"
                                " LeadLoom HTTP interface beside Grafana)")
    dash_push.add_argument("--datasource-port", type=int, default=None,
                           help="its port (default 18123)")
    dash_push.add_argument("--not-provisioned", action="store_true",
                           help="this Grafana does not mount the provisioning tree: org ids"
                                " need not match it")
    dash_push.add_argument("--set-passwords", action="store_true",
                           help="send every data source's password even when nothing else"
                                " differs (after changing one)")
    dash_push.add_argument("--json", action="store_true")
    dashboards.set_defaults(handler=_dashboards)
    users = sub.add_parser(
        "users", help="users of the store's HTTP interface: add, list, remove",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "The users file is DATA_DIR/users.json (mode 0600; scrypt hashes, never passwords).\n"
            "Roles: organizer and ops read the whole database; delegation (with --cluster) reads\n"
            "its cluster's rows of the delegation tables (schemas/scope.py). Names by\n"
            "convention: organizer, ops, delegation_<cluster>. 'add' reads the password from\n"
            "stdin (--password-stdin), else asks on a terminal, else takes\n"
            "LEADLOOM_NEW_USER_PASSWORD; it is never echoed nor an argument."
        ),
    )
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    users_add = users_sub.add_parser("add", help="add a user with a role (and a cluster)")
    users_add.add_argument("name", help="e.g. organizer, ops, delegation_keqiao")
    users_add.add_argument("--role", required=True, choices=("organizer", "ops", "delegation"))
    users_add.add_argument("--cluster", default=None, metavar="ID",
                           help="the delegation's cluster id (role delegation only)")
    users_add.add_argument("--password-stdin", action="store_true",
                           help="read the password from the first line of stdin")
    users_add.add_argument("--json", action="store_true")
    users_list = users_sub.add_parser("list", help="names, roles and clusters (never hashes)")
    users_list.add_argument("--json", action="store_true")
    users_remove = users_sub.add_parser("remove", help="remove a user")
    users_remove.add_argument("name")
    users_remove.add_argument("--json", action="store_true")
    users.set_defaults(handler=_users)

    access = sub.add_parser(
        "access", help="the delegation access model for a ClickHouse server, as SQL",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "access sql: print (never run) the statements a ClickHouse server needs to enforce\n"
            "who may read what: settings profile leadloom_readonly (readonly=1, time limit),\n"
            "users organizer, ops and delegation_<cluster> per cluster, SELECT grants (a\n"
            "delegation: its delegation tables only) and a row policy cluster_id = '<id>' per\n"
            "delegation and table (organizer and ops: USING 1). Passwords: salted SHA-256 of\n"
            "LEADLOOM_GRAFANA_CH_PASSWORD_<NAME>; without it the user is created locked."
        ),
    )
    access_sub = access.add_subparsers(dest="access_command", required=True, metavar="ACTION")
    access_sql = access_sub.add_parser("sql", help="print the access model as SQL statements")
    access_sql.add_argument("--database", default=None,
                            help="default: LEADLOOM_CLICKHOUSE_DATABASE")
    access_sql.add_argument("--json", action="store_true",
                            help="one JSON object: users, row_policies, statements")
    access.set_defaults(handler=_access)
    groups = sub.add_parser(
        "groups", help="the namespace's consumer groups: lag per partition; reset by time",
        description=(
            "Without an action: the stream workers' and the sink's groups with, per topic and"
            " partition, the committed offset, end offset and lag, and the group's state and"
            " members. 'reset' moves a stopped group's offsets to a time."
        ),
    )
    groups.add_argument("--json", action="store_true")
    groups_sub = groups.add_subparsers(dest="groups_command", metavar="ACTION")
    groups_reset = groups_sub.add_parser(
        "reset", help="reset a stopped group's committed offsets to a time",
        description=(
            "Commit, for every partition of the group's topics (or --topic), the offset of the"
            " first message at or after --to-time (its end offset when there is none). Refuses"
            " a group with active members (stop 'leadloom run' first). Shows the plan"
            " (partition: current -> new) and asks on a terminal; without one, needs --yes."
        ),
    )
    groups_reset.add_argument("group", help="a group of the namespace (see 'leadloom groups')")
    groups_reset.add_argument("--to-time", required=True, metavar="T",
                              help="ISO-8601 time with a zone (e.g. 2026-05-04T10:00:00+08:00),"
                                   " or earliest or latest")
    groups_reset.add_argument("--topic", action="append", metavar="TOPIC",
                              help="only this topic (repeatable; default: all of the group's)")
    groups_reset.add_argument("--dry-run", action="store_true",
                              help="print the plan and change nothing")
    groups_reset.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    # SUPPRESS: `groups --json reset ...` keeps the --json given before the action
    groups_reset.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    groups.set_defaults(handler=_groups)
    deadletters = sub.add_parser(
        "deadletters", help="dead-letter triage: list, show, retry",
        description=(
            "list: dead letters (newest failure first) with their retry status (never"
            " retried, republished, dead again, still invalid, not retryable). show REF: one"
            " dead letter whole (REF = its origin topic[partition]@offset), its bytes shown"
            " safely, its retries. retry: re-validate the still-dead ones with the current"
            " schemas and republish those that pass to their origin topic (original key,"
            " the leadloom-origin header); each gets a dead_letter_retries row; audited."
        ),
    )
    dl_sub = deadletters.add_subparsers(dest="deadletters_command", required=True,
                                        metavar="ACTION")

    def dl_filters(p: argparse.ArgumentParser, limit_help: str) -> None:
        p.add_argument("--reason", action="append", metavar="R",
                       help="only this reason code (repeatable), e.g. unknown_booth")
        p.add_argument("--topic", action="append", metavar="T",
                       help="only this origin topic (repeatable): a full name or its suffix,"
                            " e.g. raw.scans")
        p.add_argument("--since", metavar="T", help="failed at or after T (ISO-8601 with a"
                                                    " zone)")
        p.add_argument("--until", metavar="T", help="failed before T (ISO-8601 with a zone)")
        p.add_argument("--limit", type=int, metavar="N", default=None, help=limit_help)
        p.add_argument("--json", action="store_true")

    dl_list = dl_sub.add_parser("list", help="dead letters with their retry status")
    dl_filters(dl_list, "at most N, newest first (default 50)")
    dl_show = dl_sub.add_parser("show", help="one dead letter whole, its bytes, its retries")
    dl_show.add_argument("ref", help="its origin topic[partition]@offset (as 'list' prints)")
    dl_show.add_argument("--json", action="store_true")
    dl_retry = dl_sub.add_parser(
        "retry", help="re-validate still-dead dead letters, republish those that now pass",
        description=(
            "For each selected dead letter that is still dead and whose origin is a raw"
            " topic of the namespace: its whole bytes (the raw archive, else the dead letter"
            " when whole), validated with the current schemas; those that pass are"
            " republished to the origin topic, the others stay. Derived stages' dead letters"
            " are not retryable. Asks on a terminal; without one, needs --yes."
        ),
    )
    dl_filters(dl_retry, "at most the N newest (default: all)")
    dl_retry.add_argument("--dry-run", action="store_true",
                          help="say what would happen, send and record nothing (audited)")
    dl_retry.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    deadletters.set_defaults(handler=_deadletters)
    replay = sub.add_parser(
        "replay", help="replay raw events: reprocess into a shadow database, republish",
        description="Replays of the raw events kept in raw_archive (every message of the raw"
        " topics as the broker delivered it). Every action has --dry-run, asks for"
        " confirmation on a terminal (--yes without one), shows a progress bar on a terminal,"
        " stops cleanly on Ctrl-C (exit 130) and writes a replay_audit row.",
    )
    replay_sub = replay.add_subparsers(dest="replay_command", required=True, metavar="ACTION")
    republish = replay_sub.add_parser(
        "republish", help="re-send selected raw events with their original event ids",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Re-send raw events from raw_archive to the raw topics of the namespace, each\n"
            "message byte for byte (value, key, headers) to the topic and partition it was\n"
            "read from, plus the header leadloom-origin = its first coordinates\n"
            "(topic[partition]@offset; an existing one is kept), in Kafka timestamp order.\n"
            "Same event ids: the pipeline stores and counts each event once.\n\n"
            "Selected: events the pipeline stored (one message per event id: its first\n"
            "copy). Skipped and counted: messages that are not JSON events, events the\n"
            "pipeline did not store (dead letters: use the dead-letter retry), later copies\n"
            "of an event. --cluster selects by the cluster the pipeline enriched; event types\n"
            "without a cluster (buyer_registration) are then not selected. Needs a broker;\n"
            "reads the store through 'leadloom run' when it runs, else directly."
        ),
    )
    republish.add_argument("--from", dest="since", metavar="T", default=None,
                           help="events with occurred_at at or after T (ISO-8601 with a zone,"
                                " e.g. 2026-05-04T10:00:00+08:00); default: the first")
    republish.add_argument("--to", dest="until", metavar="T", default=None,
                           help="events with occurred_at before T; default: the last")
    republish.add_argument("--cluster", action="append", metavar="ID",
                           help="only events of this cluster (repeatable); registrations have"
                                " no cluster and are not selected")
    republish.add_argument("--type", action="append", metavar="EVENT_TYPE",
                           help="only this event type (repeatable): buyer_registration,"
                                " booth_scan, online_inquiry, procurement_step,"
                                " supplier_profile")
    republish.add_argument("--dry-run", action="store_true",
                           help="count what would be sent and send nothing (audited)")
    republish.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    republish.add_argument("--json", action="store_true",
                           help="one JSON object (counts, rate, audit id) as the last line")
    reprocess = replay_sub.add_parser(
        "reprocess", help="rebuild every derived table into a shadow database; compare; swap",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Rebuild all derived state (raw event rows, dead letters, leads, buyer\n"
            "resolution, matches, surge alerts, the lead intelligence snapshots) with the\n"
            "stream stages' own code, offline, into a shadow database (<db>__shadow or\n"
            "--into), reading the raw topics (start offsets found by timestamp) or the raw\n"
            "archive, in one order (Kafka timestamp, topic, partition, offset); then report\n"
            "the differences against live per table and per metric (buyers compared by\n"
            "their events: their ids depend on arrival order). --swap exchanges the shadow's\n"
            "tables with live and hands the stream workers' state over (whole fair from\n"
            "Kafka only, the pipeline stopped; asks first on a terminal). Writes the store\n"
            "directly: refused while 'leadloom run' owns the embedded store. Ctrl-C drops\n"
            "the unfinished shadow; a swap holds Ctrl-C until it is done. Audited."
        ),
    )
    reprocess.add_argument("--source", choices=("kafka", "archive"), default="kafka",
                           help="read the raw topics (default) or the raw archive")
    reprocess.add_argument("--from", dest="since", metavar="T", default=None,
                           help="messages with a Kafka timestamp at or after T (ISO-8601 with a"
                                " zone); default: the first")
    reprocess.add_argument("--to", dest="until", metavar="T", default=None,
                           help="messages with a Kafka timestamp before T; default: the end")
    reprocess.add_argument("--into", metavar="DATABASE", default=None,
                           help="the shadow database (dropped and created; default"
                                " <db>__shadow)")
    reprocess.add_argument("--swap", action="store_true",
                           help="swap the shadow in and hand the stream state over")
    reprocess.add_argument("--dry-run", action="store_true",
                           help="say what would be read and written; change nothing (audited)")
    reprocess.add_argument("--yes", action="store_true", help="swap without asking")
    reprocess.add_argument("--json", action="store_true",
                           help="the report (build figures, differences) as the last line")
    replay.set_defaults(handler=_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (a supervisor, `timeout`, a CI runner) stops a command as Ctrl-C does, so
    # demo and bench still stop the broker and workers they started. `run` and `worker`
    # install their own handlers.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        settings = load_settings()
        logging.basicConfig(level=settings.log_level.upper(),
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return args.handler(args, settings)
    except KeyboardInterrupt:
        progress("interrupted")
        return 130
    except Exception as exc:  # every failure ends in one line, not a traceback
        if os.environ.get("LEADLOOM_DEBUG"):
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        print(f"leadloom: error: {reason}", file=sys.stderr)
        return 1


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


if __name__ == "__main__":
    sys.exit(main())
