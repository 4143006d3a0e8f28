"""``freshet features ENTITY ID``: one entity's features as a table, stale
values marked, and a warning when the edge's spec differs from this one.
``freshet consistency --sample N``: online values against the event log's
replay, the match rate per feature and every mismatch; exit 1 on any.
``freshet backfill name@version``: a new version's history from the log.
``freshet profile DATA -o baseline.json``: a training set's baseline.
``freshet drift [--since 24h]``: served values against the baseline; exit 1
when a feature alerts.
``freshet migrate``: a Redis store written before layout 2 into layout 2.
``freshet erase --user U | --client C``: one person's data erased by the
edge; prints the receipt once done."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from freshet._freshet import FreshetError
from freshet.store import FeatureStore


def _env_option(parser: argparse.ArgumentParser, flag: str, var: str, help: str, default: str | None = None) -> None:
    """An option whose default is the environment variable `var` (then `default`)."""
    parser.add_argument(flag, default=os.environ.get(var, default), help=help)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="freshet", description="Freshet's model-side tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    features = sub.add_parser("features", help="print one entity's features")
    features.add_argument("entity")
    features.add_argument("id")
    _env_option(
        features,
        "--url",
        "FRESHET_STORE",
        "redis://, mongodb:// or the edge's http(s):// URL (default: $FRESHET_STORE)",
    )
    _env_option(
        features,
        "--spec",
        "FRESHET_SPEC",
        "features.toml (default: $FRESHET_SPEC or ./features.toml)",
        default="features.toml",
    )
    _env_option(features, "--read-token", "FRESHET_READ_TOKEN", "the edge's read token (default: $FRESHET_READ_TOKEN)")
    _env_option(
        features, "--edge-url", "FRESHET_EDGE_URL", "the edge whose spec to compare with, for a Redis or MongoDB URL"
    )
    features.add_argument("--names", help="comma-separated feature names (default: all)")
    features.add_argument("--timeout", type=float, default=2.0, help="seconds (default: 2)")
    check = sub.add_parser(
        "consistency",
        help="compare online values with the event log's replay",
        description="Reads N (entity, feature) pairs online, the entities drawn from those seen in the log, "
        "replays the log as of each read (served view) and prints the match rate per feature and every "
        "mismatch with both values. Exit status 1 on any mismatch.",
    )
    check.add_argument("--sample", type=int, default=100, help="pairs to compare (default: 100)")
    _env_option(
        check,
        "--url",
        "FRESHET_STORE",
        "the online store: redis://, redis+cluster://, mongodb:// or the edge's http(s):// URL "
        "(default: $FRESHET_STORE, else --log when it is the edge)",
    )
    _env_option(
        check,
        "--log",
        "FRESHET_LOG",
        "the event log: the edge's http(s):// URL, s3://bucket/prefix or a folder "
        "(default: $FRESHET_LOG, else --url when it is the edge)",
    )
    _env_option(check, "--read-token", "FRESHET_READ_TOKEN", "the edge's read token (default: $FRESHET_READ_TOKEN)")
    _env_option(
        check,
        "--spec",
        "FRESHET_SPEC",
        "features.toml (default: $FRESHET_SPEC or ./features.toml)",
        default="features.toml",
    )
    check.add_argument("--features", help="comma-separated entity:name features to sample (default: all)")
    check.add_argument("--seed", type=int, help="makes the sample repeatable")
    check.add_argument("--start", type=int, help="read the log from this receive time (ms; the edge: a year back)")
    check.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default: 30)")
    fill = sub.add_parser(
        "backfill",
        help="give a new feature version its history from the event log",
        description="Sends the event log's batches to the edge's POST /v1/backfill, which applies them to "
        "FEATURE (name@version, marked `backfill = true` in the spec the edge runs) under the version's own "
        "batch marker: live writes and any number of runs count each batch once.",
    )
    fill.add_argument("feature", help="name@version")
    _env_option(fill, "--edge", "FRESHET_EDGE_URL", "the edge's http(s):// URL (default: $FRESHET_EDGE_URL)")
    fill.add_argument("--admin-token", help="the edge's admin token (default: $FRESHET_ADMIN_TOKEN)")
    _env_option(
        fill,
        "--log",
        "FRESHET_LOG",
        "the event log: s3://bucket/prefix or a folder (default: $FRESHET_LOG, else the edge)",
    )
    _env_option(
        fill,
        "--read-token",
        "FRESHET_READ_TOKEN",
        "the edge's read token, to read its log (default: $FRESHET_READ_TOKEN)",
    )
    fill.add_argument("--start", type=int, help="receive time to start from (ms; default: the whole log)")
    fill.add_argument("--end", type=int, help="receive time to stop at (ms; default: now)")
    fill.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default: 60)")
    er = sub.add_parser(
        "erase",
        help="erase one person's data (store, composite entities, event log) and print the receipt",
        description="Asks the edge (POST /v1/erasures) to erase a userId (with the clients it signed in from) "
        "and/or a clientId, then waits for every part to be done and prints the receipt. Their events at or "
        "before now never count again, whatever sends them.",
    )
    er.add_argument("--user", help="the userId to erase")
    er.add_argument("--client", help="the clientId to erase")
    _env_option(er, "--edge", "FRESHET_EDGE_URL", "the edge's http(s):// URL (default: $FRESHET_EDGE_URL)")
    er.add_argument("--admin-token", help="the edge's admin token (default: $FRESHET_ADMIN_TOKEN)")
    er.add_argument(
        "--scan-log-days",
        type=int,
        default=0,
        help="also read every log object of this many days back (a log written before this release)",
    )
    er.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the receipt (default: 120)")
    prof = sub.add_parser(
        "profile",
        help="write a drift baseline from a training set",
        description="Profiles each feature column of a training set (get_historical_features's output saved as "
        "Parquet, or CSV): count, mean, stddev, min, max, decile bins and their shares, top categories. "
        "Name the file in FRESHET_DRIFT_BASELINE (the edge) or pass it to `freshet drift --baseline`.",
    )
    prof.add_argument("data", help="a .parquet or .csv file")
    prof.add_argument("-o", "--out", default="baseline.json", help="the baseline file (default: baseline.json)")
    _env_option(prof, "--spec", "FRESHET_SPEC", "features.toml (default: $FRESHET_SPEC or ./features.toml)",
                default="features.toml")  # fmt: skip
    dr = sub.add_parser(
        "drift",
        help="compare served values with the training baseline; exit 1 on an alert",
        description="Reads the drift summaries the edge and the reader sampled over the last --since, compares "
        "each feature with its baseline (PSI, Jensen-Shannon distance, the mean and stddev rule) and prints "
        "the report. Exit status 1 when any feature alerts, so a cron job or CI can act on it.",
    )
    _env_option(dr, "--url", "FRESHET_STORE",
                "redis:// or mongodb:// (the summaries' store), or the edge's http(s):// URL "
                "(default: $FRESHET_STORE)")  # fmt: skip
    _env_option(dr, "--spec", "FRESHET_SPEC", "features.toml (default: $FRESHET_SPEC or ./features.toml)",
                default="features.toml")  # fmt: skip
    _env_option(dr, "--read-token", "FRESHET_READ_TOKEN", "the edge's read token (default: $FRESHET_READ_TOKEN)")
    dr.add_argument("--baseline", help="a `freshet profile` file (default: the spec's expected stats only)")
    dr.add_argument("--since", default="24h", help="how far back: 1h to 8d (default: 24h)")
    dr.add_argument("--min-samples", type=int, help="fewer is 'not enough data' (default: 100)")
    dr.add_argument("--json", action="store_true", help="print the report as JSON")
    dr.add_argument("--png", metavar="DIR", help="write baseline-against-live histograms of alerting features")
    dr.add_argument("--timeout", type=float, default=10.0, help="seconds (default: 10)")
    mig = sub.add_parser(
        "migrate",
        help="move a Redis store written before layout 2 into layout 2, then mark it",
        description="Moves every entity a Redis store holds in layout 1 (before Freshet's compact layout 2) "
        "into layout 2, with its live batch markers, each in one transaction; then sets the store's layout "
        "mark so that reads skip layout 1. Run it once every edge runs this version. Exit status 1 when an "
        "entity is left in layout 1 (the store is then not marked).",
    )
    _env_option(mig, "--url", "FRESHET_STORE", "the redis:// URL, ?prefix= included (default: $FRESHET_STORE)")
    _env_option(mig, "--spec", "FRESHET_SPEC", "features.toml (default: $FRESHET_SPEC or ./features.toml)",
                default="features.toml")  # fmt: skip
    args = parser.parse_args(argv)
    try:
        if args.command == "migrate":
            if not args.url:
                parser.error("give --url (or set FRESHET_STORE)")
            return _migrate(args)
        if args.command == "profile":
            return _profile(args)
        if args.command == "drift":
            if not args.url:
                parser.error("give --url (or set FRESHET_STORE)")
            return _drift(args)
        if args.command == "consistency":
            return _consistency(args)
        if args.command == "backfill":
            if not args.edge:
                parser.error("give --edge (or set FRESHET_EDGE_URL)")
            return _backfill(args)
        if args.command == "erase":
            if not args.edge:
                parser.error("give --edge (or set FRESHET_EDGE_URL)")
            if not (args.user or args.client):
                parser.error("give --user, --client, or both")
            return _erase(args)
        if not args.url:
            parser.error("give --url (or set FRESHET_STORE)")
        return _features(args)
    except (FreshetError, OSError, ValueError, ImportError) as e:
        print(f"freshet: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def _migrate(args: argparse.Namespace) -> int:
    from freshet.migrate import migrate

    report = migrate(args.url, spec=args.spec)
    for line in report.lines():
        print(line)
    return 0 if report.marked else 1


def _profile(args: argparse.Namespace) -> int:
    from freshet.drift import profile

    baseline, skipped = profile(args.data, spec=args.spec)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(baseline, f, indent=2)
        f.write("\n")
    print(f"profiled {len(baseline['features'])} features into {args.out}: {', '.join(baseline['features'])}")
    if skipped:
        print(f"skipped (no feature of the spec): {', '.join(skipped)}")
    return 0


def _drift(args: argparse.Namespace) -> int:
    from freshet.drift import drift

    report = drift(
        args.url, spec=args.spec, baseline=args.baseline, since=args.since, read_token=args.read_token,
        min_samples=args.min_samples, timeout=args.timeout,
    )  # fmt: skip
    if args.json:
        print(report.to_json())
    else:
        for line in report.lines():
            print(line)
    if args.png:
        for path in report.save_png(args.png):
            print(f"wrote {path}", file=sys.stderr)
    return 1 if report.alert else 0


def _consistency(args: argparse.Namespace) -> int:
    from freshet.consistency import consistency

    names = [n.strip() for n in args.features.split(",") if n.strip()] if args.features else None
    report = consistency(
        args.sample, url=args.url, log=args.log, read_token=args.read_token, spec=args.spec, features=names,
        seed=args.seed, start=args.start, timeout=args.timeout,
    )  # fmt: skip
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _backfill(args: argparse.Namespace) -> int:
    from freshet.backfill import backfill

    report = backfill(
        args.feature, edge=args.edge, admin_token=args.admin_token, log=args.log, read_token=args.read_token,
        start=args.start, end=args.end, timeout=args.timeout,
    )  # fmt: skip
    for line in report.lines():
        print(line)
    return 0


def _erase(args: argparse.Namespace) -> int:
    from freshet.erasure import erase

    receipt = erase(edge=args.edge, user=args.user, client=args.client, admin_token=args.admin_token,
                    scan_log_days=args.scan_log_days, wait=args.wait)  # fmt: skip
    for line in receipt.lines():
        print(line)
    return 0 if receipt.done else 1


def _features(args: argparse.Namespace) -> int:
    names = [n.strip() for n in args.names.split(",") if n.strip()] if args.names else None
    with FeatureStore(
        args.spec, args.url, read_token=args.read_token, timeout=args.timeout, edge_url=args.edge_url
    ) as store:
        res = store.get_online_features(args.entity, [args.id], names)
        if store.edge_url is not None:
            try:
                check = store.check_spec()
            except FreshetError as e:
                print(f"warning: could not check the edge's spec: {e}", file=sys.stderr)
            else:
                if not check.matches:
                    print(
                        f"warning: spec mismatch: {args.spec} hashes to {check.local}, "
                        f"the edge at {check.edge_url} runs {check.edge or 'an unknown spec'}; "
                        "values may not mean what this spec says",
                        file=sys.stderr,
                    )
    rows = [("feature", "value", "updated at", "")]
    for name, v in res[0].items():
        rows.append((name, json.dumps(v.value, ensure_ascii=False), v.updated_at or "-", "STALE" if v.stale else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"{args.entity} {args.id}")
    for r in rows:
        print(f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
