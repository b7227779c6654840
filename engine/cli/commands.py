"""The ``causalmix`` command line: run, validate, report, pretrain, list."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

from engine.core.errors import CausalMixError
from engine.storage.fsio import Location, as_location, join, shown
from engine.storage.results_schema import METRICS

EXIT_CODES = """exit status:
  0    done (run: every trial ok; status: the sweep finished)
  1    run: the sweep finished with trials in error (the results say which)
  2    bad input: the sweep file, data, storage or arguments (one line says what)
  3    internal error (one line; CAUSALMIX_DEBUG=1 shows the traceback)
  4    status: the sweep is running
  5    status: the sweep is stale (its driver is gone before it finished; rerun to resume)
  130  interrupted (Ctrl-C); run the same command again to resume"""


def _parser() -> argparse.ArgumentParser:
    from engine import __version__

    p = argparse.ArgumentParser(prog="causalmix", description="CausalMix Sweep: fine-tune tabular "
                                "foundation models on real + SCM-synthetic rows, swept over "
                                "synthetic scale x mix ratio, on Ray.", epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"causalmix {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run or resume a sweep")
    run.add_argument("spec", help="sweep YAML file")
    run.add_argument("--storage", help="override the spec's storage (a folder or a URI such "
                     "as s3://bucket/runs)")
    run.add_argument("--address", help="Ray cluster address (e.g. 'auto'); default: local Ray")
    run.add_argument("--num-cpus", type=int, help="CPUs for a local Ray (default: all)")
    run.add_argument("--no-report", action="store_true", help="skip the report at the end")
    run.add_argument("--methods", help="comma-separated: run only these methods' trials now "
                     "(the others stay planned for a later run)")
    run.add_argument("--reuse-from", metavar="DIR", help="folder or URI of exported tables "
                     "(results.parquet, evaluations.parquet): finished trials whose trial_key "
                     "matches are restored, not rerun")
    run.add_argument("--tune-verbose", type=int, default=0, choices=[0, 1, 2],
                     help="Ray Tune's own console output (default 0: one line per trial)")
    run.add_argument("--worker-logs", action="store_true",
                     help="stream Ray worker output to the console")

    st = sub.add_parser("status", help="progress of a running or finished sweep")
    st.add_argument("sweep_dir", help="<storage>/<sweep name> folder or URI")

    val = sub.add_parser("validate", help="check a sweep file without running it")
    val.add_argument("spec")

    rep = sub.add_parser("report", help="tables and scaling curves from one or more sweeps")
    rep.add_argument("sweep_dirs", nargs="+", help="<storage>/<sweep name> folders or URIs")
    rep.add_argument("--out", help="output folder or URI (default: <first sweep>/report, or "
                     "report_<metric> with --metric)")
    rep.add_argument("--metric", default="roc_auc", choices=list(METRICS),
                     help="metric of the method tables and scaling curves: validation-selected, "
                     "normalised improvement of test <metric> over zero-shot (default roc_auc)")

    pre = sub.add_parser("pretrain", help="pretrain the embedded PFN on the synthetic prior")
    pre.add_argument("config", help="pretraining YAML (see engine/models/pretrain_default.yaml)")
    pre.add_argument("--output", help="where to write the final weights")
    pre.add_argument("--no-resume", action="store_true", help="start over, ignore checkpoints")

    pf = sub.add_parser("prefetch", help="download model weights into the local cache")
    pf.add_argument("model", nargs="?", default="mitra", help="model name (default: mitra)")
    pf.add_argument("--cache-dir", help="cache directory (default: $CAUSALMIX_CACHE or "
                    "~/.cache/causalmix)")
    pf.add_argument("--repo-id", default="autogluon/mitra-classifier", help="Hugging Face repo")
    pf.add_argument("--revision", help="repo revision (branch, tag or commit)")

    ls = sub.add_parser("list", help="list registered datasets, methods, generators and models")
    ls.add_argument("what", nargs="?", default="all",
                    choices=["all", "datasets", "methods", "generators", "models"])
    from engine.cli import data_commands as cli_data

    cli_data.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except CausalMixError as exc:
        print(f"causalmix: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("causalmix: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `causalmix validate ... | head`): stop quietly. Python
        # would report the failed flush of stdout at exit, so point stdout at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug or an unforeseen input: still one line
        if os.environ.get("CAUSALMIX_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"causalmix: internal error: {type(exc).__name__}: {first[:300]} (set "
              "CAUSALMIX_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: Any = None, line: str | None = None) -> None:
    text = str(message).strip().splitlines()[0] if str(message).strip() else category.__name__
    print(f"causalmix: warning: {text}", file=sys.stderr)


def _dispatch(args: argparse.Namespace) -> int:
    from engine.cli import data_commands as cli_data

    handled = cli_data.dispatch(args)
    if handled is not None:
        return handled
    handlers = {"run": _run, "status": _status, "validate": _validate, "report": _report,
                "pretrain": _pretrain, "prefetch": _prefetch,
                "list": lambda a: _list(a.what)}
    if args.command not in handlers:
        raise AssertionError(args.command)
    return handlers[args.command](args)


def _run(args: argparse.Namespace) -> int:
    from engine.execution.orchestrate import run_sweep
    from engine.spec.sweep_file import load_spec

    spec = load_spec(args.spec, storage=args.storage)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    sweep_dir = run_sweep(spec, address=args.address, num_cpus=args.num_cpus,
                          report=not args.no_report, tune_verbose=args.tune_verbose,
                          worker_logs=args.worker_logs, methods=methods,
                          reuse_from=as_location(args.reuse_from) if args.reuse_from else None)
    return _errors_exit(sweep_dir)


def _status(args: argparse.Namespace) -> int:
    from engine.storage.progress import STATE_EXIT, read_status

    state, text = read_status(as_location(args.sweep_dir))
    print(text)
    return STATE_EXIT[state]


def _validate(args: argparse.Namespace) -> int:
    from engine.execution.orchestrate import check_fold_sizes, plan_summary
    from engine.plan.sweep_plan import make_plan
    from engine.spec.sweep_file import load_spec

    spec = load_spec(args.spec)
    check_fold_sizes(make_plan(spec), offline_only=True, source=spec.source)
    print(f"{args.spec}: ok")
    print(json.dumps(plan_summary(spec), indent=1))
    return 0


def _report(args: argparse.Namespace) -> int:
    from engine.report import build_report
    from engine.report.load import usable_sweep_dirs
    from engine.storage.store import ensure_writable_dir

    dirs = usable_sweep_dirs([as_location(d) for d in args.sweep_dirs])
    default = "report" if args.metric == "roc_auc" else f"report_{args.metric}"
    out_dir = as_location(args.out) if args.out else join(dirs[0], default)
    ensure_writable_dir(out_dir, "report output")
    out = build_report(dirs, out_dir, metric=args.metric)
    print(f"report written to {shown(out)}")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from engine.models.pretrain import run_pretraining

    out = run_pretraining(args.config, output=args.output, resume=not args.no_resume)
    print(f"weights written to {out}")
    return 0


def _prefetch(args: argparse.Namespace) -> int:
    if args.model != "mitra":
        raise CausalMixError(f"nothing to prefetch for model '{args.model}' (the embedded "
                             "pfn ships inside the package)")
    from engine.models.mitra import prefetch

    path = prefetch(cache_dir=args.cache_dir, repo_id=args.repo_id, revision=args.revision)
    print(f"weights cached at {path}")
    return 0


def _errors_exit(sweep_dir: Location) -> int:
    """1 (and one line saying how many) when any trial of the sweep ended in error."""
    from engine.storage.store import SweepStore

    store = SweepStore(sweep_dir)
    res = store.read_table("results.parquet", columns=["status"])
    n_err = int((res["status"] != "ok").sum())
    if n_err:
        print(f"causalmix: {n_err} of {len(res)} trials ended in error (column 'error' of "
              f"{shown(store.results_path)}); rerun the same command to retry them",
              file=sys.stderr)
        return 1
    return 0


def _list(what: str) -> int:
    from engine.data import dataset_names
    from engine.generators import generator_names
    from engine.models import model_names
    from engine.spec.methods import METHODS

    sections = {
        "datasets": dataset_names,
        "methods": lambda: [f"{m.name}: {m.description}" for m in METHODS.values()],
        "generators": generator_names,
        "models": model_names,
    }
    for name, fn in sections.items():
        if what in ("all", name):
            print(f"{name}:")
            for item in fn():
                print(f"  {item}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
