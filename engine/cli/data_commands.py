"""``causalmix datasets`` and ``causalmix data fetch|check``: the TabArena-v0.1 suite on disk."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.core.errors import CausalMixError


def add_parsers(sub: Any) -> None:
    """Register ``datasets`` and ``data`` on the top-level subparsers."""
    from engine.data.tabarena_meta import SUITE, SUITES

    ds = sub.add_parser("datasets", help="the TabArena-v0.1 classification suite and whether "
                        "each dataset is available offline")
    ds.add_argument("--dir", help="mirror directory (default: $CAUSALMIX_DATA)")
    ds.add_argument("--suite", default=SUITE, choices=SUITES, help=f"default: {SUITE}")

    data = sub.add_parser("data", help="prefetch TabArena datasets or check a mirror directory")
    dsub = data.add_subparsers(dest="data_command", required=True)
    fetch = dsub.add_parser("fetch", help="download datasets and their OpenML task splits "
                            "(needs network and the 'openml' extra)")
    fetch.add_argument("names", nargs="*", help="TabArena names (or tabarena/<name>)")
    fetch.add_argument("--suite", choices=SUITES, help="every dataset of a suite")
    fetch.add_argument("--dir", help="write a mirror here (default: the cache, "
                       "$CAUSALMIX_CACHE/tabarena)")
    fetch.add_argument("--force", action="store_true", help="download again if present")
    check = dsub.add_parser("check", help="compare a mirror directory with the metadata")
    check.add_argument("dir", help="mirror directory")


def dispatch(args: argparse.Namespace) -> int | None:
    """Run the command if it is one of ours, else return None."""
    if args.command == "datasets":
        return _datasets(args.suite, args.dir)
    if args.command == "data" and args.data_command == "fetch":
        return _fetch(args.names, args.suite, args.dir, args.force)
    if args.command == "data" and args.data_command == "check":
        return _check(args.dir)
    return None


def _datasets(suite: str, directory: str | None) -> int:
    from engine.data.tabarena import mirror_dir, where_available
    from engine.data.tabarena_meta import suite_tasks

    mirror = mirror_dir(directory)
    head = (f"{'name':<42} {'data id':>7} {'task id':>7} {'rows':>7} {'feat':>5} {'cls':>3} "
            f"{'rep x fold':>10} {'mitra':>5} {'study':>5} {'offline':>7}  licence")
    print(head)
    tasks = suite_tasks(suite)
    n_offline = 0
    for t in tasks:
        where = where_available(t, mirror)
        n_offline += bool(where)
        print(f"{t.name:<42} {t.dataset_id:>7} {t.task_id:>7} {t.rows:>7,} {t.features:>5} "
              f"{t.classes:>3} {f'{t.tabarena_repeats} x {t.folds}':>10} "
              f"{'yes' if t.mitra_compatible else 'no':>5} {'yes' if t.in_study else 'no':>5} "
              f"{where or '-':>7}  {t.licence}")
    print(f"{len(tasks)} datasets, {n_offline} available offline (mirror: {mirror or 'none'}; "
          "rep x fold: TabArena's repeats x folds; the OpenML tasks define 10 x 3)")
    return 0


def _fetch(names: list[str], suite: str | None, directory: str | None, force: bool) -> int:
    from engine.data.tabarena import cache_dir, find_table
    from engine.data.tabarena_fetch import fetch_task
    from engine.data.tabarena_meta import get_task, suite_tasks
    from engine.data.tabarena_splits import splits_path

    if not names and not suite:
        raise CausalMixError("data fetch: name datasets or give --suite (e.g. --suite "
                             "tabarena-v0.1)")
    tasks = [get_task(n) for n in names] + (suite_tasks(suite) if suite else [])
    target = Path(directory).expanduser() if directory else cache_dir()
    failed = 0
    for task in dict.fromkeys(tasks):
        have = find_table(target, task.name) and splits_path(target, task.name).is_file()
        if have and not force:
            print(f"{task.name}: already in {target}")
            continue
        try:
            path = fetch_task(task, target)
        except CausalMixError as exc:
            print(f"{task.name}: failed: {exc}")
            failed += 1
            continue
        print(f"{task.name}: {path} and {splits_path(target, task.name).name}")
    return 1 if failed else 0


def _check(directory: str) -> int:
    from engine.data.mirror_check import check_mirror

    lines = check_mirror(directory)
    counts: dict[str, int] = {}
    for line in lines:
        print(line.render())
        counts[line.status] = counts.get(line.status, 0) + 1
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("exact", "close", "wrong", "missing"))
    stray = f", {counts['unknown']} unknown file(s)" if counts.get("unknown") else ""
    print(f"{directory}: {summary}{stray}")
    return 0
