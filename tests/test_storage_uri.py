"""Storage at a URI: a small sweep with ``storage: file://...`` and one on a real S3 API (a
local moto server) store every file there and reuse them on a rerun; storage URIs that cannot
be written get one line naming 'storage'."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import main
from engine.execution.orchestrate import run_sweep
from engine.spec.sweep_file import parse_spec
from tests.conftest import S3_TEST_ENV, small_spec, write_yaml

SMALL = {"datasets": ["sklearn/wine"], "methods": ["finetune", "scm"]}


def _stamps(root: Path) -> dict[Path, int]:
    files = [*root.glob("trials/**/result.json"), *root.glob("synthetic/**/*.parquet")]
    return {p: p.stat().st_mtime_ns for p in files}


@pytest.fixture(scope="module")
def file_sweep(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uri")
    uri = (tmp / "store").as_uri()
    spec = parse_spec(small_spec(tmp, storage=uri, **SMALL))
    return spec, run_sweep(spec, report=True), tmp / "store" / "mini"


def test_file_uri_sweep_stores_its_files_there(file_sweep):
    spec, location, folder = file_sweep
    assert location == spec.storage + "/mini" and location.startswith("file://")
    res = pd.read_parquet(folder / "results.parquet")
    assert len(res) == 2 and (res["status"] == "ok").all(), res["error"].tolist()
    assert len(list(folder.glob("trials/**/result.json"))) == 2
    assert len(list(folder.glob("synthetic/**/synthetic.parquet"))) == 1
    fit_id = res.loc[res["method"] == "scm", "fit_id"].iloc[0]
    assert fit_id.startswith("scm/sklearn__wine/fold0/")  # relative, as for a local path
    assert set(pd.read_parquet(folder / "fits.parquet")["fit_id"]) == {fit_id}
    assert (folder / "report" / "report.html").is_file()
    assert (folder / "status.json").is_file() and any(folder.glob("tune/run-*"))


def test_file_uri_rerun_reuses_everything(file_sweep, capsys):
    spec, location, folder = file_sweep
    before = _stamps(folder)
    capsys.readouterr()
    assert run_sweep(spec, report=False) == location
    assert "2 reused, 0 to run" in capsys.readouterr().out
    assert _stamps(folder) == before


# ---------------------------------------------------------------------------- S3 (moto)
@pytest.fixture(scope="module")
def s3_endpoint():
    """A local S3 API server (moto) with the bucket 'sweeps'; yields 'host:port'."""
    if importlib.util.find_spec("moto") is None:
        pytest.skip("moto is not installed (pip install 'moto[server]', in the dev extra): "
                    "the S3 tests need its local S3 server")
    from moto.server import ThreadedMotoServer
    from pyarrow import fs

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"{host}:{port}"
    for key, value in S3_TEST_ENV.items():  # as ray_local sets them for its workers
        os.environ.setdefault(key, value)
    fs.S3FileSystem(endpoint_override=endpoint, scheme="http",
                    allow_bucket_creation=True).create_dir("sweeps")
    yield endpoint
    server.stop()


def _s3(endpoint: str) -> object:
    from pyarrow import fs

    return fs.S3FileSystem(endpoint_override=endpoint, scheme="http")


def _keys(endpoint: str, prefix: str) -> dict[str, object]:
    from pyarrow import fs

    infos = _s3(endpoint).get_file_info(fs.FileSelector(prefix, recursive=True))
    return {i.path[len(prefix) + 1:]: i.mtime for i in infos if i.type == fs.FileType.File}


@pytest.fixture(scope="module")
def s3_sweep(ray_local, s3_endpoint, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("s3")
    uri = f"s3://sweeps/runs?endpoint_override={s3_endpoint}&scheme=http"
    spec = parse_spec(small_spec(tmp, storage=uri, **SMALL))
    return spec, run_sweep(spec, report=True), s3_endpoint


def test_s3_sweep_lands_in_the_bucket(s3_sweep):
    spec, location, endpoint = s3_sweep
    assert location.startswith("s3://sweeps/runs/mini?endpoint_override=")
    keys = _keys(endpoint, "sweeps/runs/mini")
    assert {"results.parquet", "evaluations.parquet", "fits.parquet", "status.json",
            "report/report.html", "scaling_curves.csv"} <= set(keys)
    assert sum(k.startswith("trials/") and k.endswith("/result.json") for k in keys) == 2
    assert sum(k.endswith("/synthetic.parquet") for k in keys) == 1
    assert any(k.startswith("baselines/") for k in keys)
    assert any(k.startswith("tune/run-") for k in keys)  # Ray Tune wrote there too
    assert any(k.startswith("tensorboard/hparams/") for k in keys)
    with _s3(endpoint).open_input_file("sweeps/runs/mini/results.parquet") as fh:
        res = pd.read_parquet(fh)
    assert len(res) == 2 and (res["status"] == "ok").all(), res["error"].tolist()


def test_s3_rerun_reuses_everything(s3_sweep, capsys):
    spec, location, endpoint = s3_sweep
    before = {k: t for k, t in _keys(endpoint, "sweeps/runs/mini").items()
              if k.startswith(("trials/", "synthetic/"))}
    capsys.readouterr()
    run_sweep(spec, report=False)
    assert "2 reused, 0 to run" in capsys.readouterr().out
    after = _keys(endpoint, "sweeps/runs/mini")
    assert {k: after[k] for k in before} == before


def test_s3_status_and_report_commands(s3_sweep, tmp_path, capsys):
    _, location, _ = s3_sweep
    assert main(["status", location]) == 0
    assert "mini: finished" in capsys.readouterr().out
    assert main(["report", location, "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.html").is_file()


# ---------------------------------------------------------------------------- bad URIs
def _validate_line(tmp: Path, storage: str, capsys) -> str:
    path = write_yaml(tmp / "sweep.yaml", small_spec(tmp, storage=storage, **SMALL))
    capsys.readouterr()
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "'storage'" in err[0]
    return err[0]


def test_unknown_scheme_is_one_line(tmp_path, capsys):
    line = _validate_line(tmp_path, "nosuchfs://bucket/runs", capsys)
    assert "Unrecognized filesystem type" in line


def test_missing_bucket_is_one_line(s3_endpoint, tmp_path, capsys):
    line = _validate_line(
        tmp_path, f"s3://no-such-bucket/runs?endpoint_override={s3_endpoint}&scheme=http", capsys)
    assert "NO_SUCH_BUCKET" in line and "no-such-bucket" in line


def test_unknown_uri_option_is_one_line(s3_endpoint, tmp_path, capsys):
    line = _validate_line(tmp_path, f"s3://sweeps/runs?endpoint_override={s3_endpoint}"
                          "&scheme=http&colour=blue", capsys)
    assert "colour" in line


def test_status_and_report_of_a_missing_s3_sweep(s3_endpoint, capsys):
    missing = f"s3://sweeps/none?endpoint_override={s3_endpoint}&scheme=http"
    assert main(["status", missing]) == 2
    assert main(["report", missing]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("causalmix: error:") for line in err)


def test_uri_paths_keep_their_query_options():
    from engine.storage import fsio

    uri = "s3://b/runs/?endpoint_override=h:1&scheme=http"
    leaf = fsio.join(uri, "synthetic", "scm", "fold0")
    assert leaf == "s3://b/runs/synthetic/scm/fold0?endpoint_override=h:1&scheme=http"
    assert fsio.relative(leaf, fsio.join(uri, "synthetic")) == "scm/fold0"
    assert fsio.parent(fsio.join(uri, "x")) == "s3://b/runs?endpoint_override=h:1&scheme=http"
    assert fsio.shown("s3://KEY:SECRET@b/x?scheme=http") == "s3://***@b/x?scheme=http"
    assert fsio.join(Path("/a"), "b", "c") == Path("/a/b/c")  # local paths stay Paths
    assert fsio.as_location("runs/x") == Path("runs/x")


def test_s3_search_keeps_its_studies_in_the_bucket(ray_local, s3_endpoint, tmp_path, capsys):
    """A search sweep on S3: the studies' SQLite file is uploaded, and a rerun from a fresh
    local copy resumes from it (nothing reruns)."""
    import optuna

    uri = f"s3://sweeps/runs?endpoint_override={s3_endpoint}&scheme=http"
    search = {"mode": "optuna", "budget": 2, "space": {"synthetic_scale": [0.5, 1.5]}}
    spec = parse_spec(small_spec(tmp_path, storage=uri, name="srch", datasets=["sklearn/wine"],
                                 methods=["scm"], search=search))
    run_sweep(spec, report=True)
    keys = _keys(s3_endpoint, "sweeps/runs/srch")
    assert "search/optuna.db" in keys and "report/search_best_points.csv" in keys
    local = tmp_path / "optuna.db"
    with _s3(s3_endpoint).open_input_file("sweeps/runs/srch/search/optuna.db") as fh:
        local.write_bytes(fh.read())
    study = optuna.load_study(study_name="scm/sklearn__wine/fold0",
                              storage=f"sqlite:///{local}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    capsys.readouterr()
    run_sweep(spec, report=False)
    assert "2 reused, 0 to run" in capsys.readouterr().out


def test_s3_lease_refuses_a_second_driver(s3_endpoint):
    """The lease on an object store: write, settle, read back; a second driver is refused."""
    from engine.core.errors import SweepLockedError
    from engine.storage import fsio
    from engine.storage.lease import SweepLease

    uri = f"s3://sweeps/lease-test/lease.json?endpoint_override={s3_endpoint}&scheme=http"
    with SweepLease(uri, "s"):
        with pytest.raises(SweepLockedError, match="is held by"):
            SweepLease(uri, "s").acquire()
    assert fsio.read_json(uri) is None
