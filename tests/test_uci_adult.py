"""``uci/adult``: registered, listed, and read offline from the mirror's adult.csv."""

from __future__ import annotations

import pytest

from engine.data import dataset_names, load_dataset
from tests.conftest import SHARED_DATASETS

mirrored = pytest.mark.skipif(
    not any((SHARED_DATASETS / f"adult.{s}").is_file() for s in ("csv", "parquet")),
    reason=f"{SHARED_DATASETS}/adult.csv (or .parquet) is absent")


def test_adult_is_registered_and_listed(capsys):
    from engine.cli.commands import main

    assert "uci/adult" in dataset_names()
    assert main(["list", "datasets"]) == 0
    assert "uci/adult" in capsys.readouterr().out


@mirrored
def test_adult_loads_offline_from_the_mirror(monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the mirror must be read without the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    ds = load_dataset("uci/adult", data_dir=str(SHARED_DATASETS))
    assert ds.X.shape == (48842, 14) and "income" not in ds.X.columns
    assert list(ds.classes) == ["<=50K", ">50K"]
    assert ds.y.value_counts().to_dict() == {"<=50K": 37155, ">50K": 11687}


@mirrored
def test_adult_mirror_file_is_in_the_fold_key(monkeypatch, tmp_path):
    from engine.spec.cache_keys import dataset_identity
    from engine.spec.sweep_file import parse_spec
    from tests.conftest import small_spec

    monkeypatch.setenv("CAUSALMIX_DATA", str(SHARED_DATASETS))
    spec = parse_spec(small_spec(tmp_path, datasets=["uci/adult"]))
    ident = dataset_identity(spec.datasets[0].as_dict(), spec.data_dir)
    assert len(ident["file_sha256"]) == 1
