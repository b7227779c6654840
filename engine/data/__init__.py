"""Datasets: a registry of offline and downloadable tables, and their preprocessing."""

from __future__ import annotations

from engine.core.errors import DataError
from engine.data.registry import DATASETS, Dataset, register_dataset


def _load_all() -> None:
    import engine.data as pkg
    from engine.core.plugins import import_submodules

    import_submodules(pkg, skip=("registry", "preprocess", "local_files", "tabarena_fetch",
                                 "tabarena_splits", "mirror_check"))


def dataset_names() -> list[str]:
    _load_all()
    return DATASETS.names()


def load_dataset(name: str, path: str | None = None, target: str | None = None,
                 data_dir: str | None = None) -> Dataset:
    """Load a registry dataset, ``openml/<id>``, or a local file when ``path`` is given.

    ``data_dir`` (or ``$CAUSALMIX_DATA``) names a mirror directory read instead of the network.
    """
    _load_all()
    if path is not None:
        from engine.data.local_files import load_local

        return load_local(name, path, target or "target")
    if name.startswith("tabarena/"):
        from engine.data.tabarena import load_tabarena

        return load_tabarena(name, data_dir)
    if name.startswith("openml/"):
        from engine.data.openml_datasets import load_openml

        ident = name.split("/", 1)[1]
        if not ident.isdigit():
            raise DataError(f"{name}: expected openml/<numeric data id>")
        return load_openml(int(ident), data_dir=data_dir)
    loader = DATASETS.get(name)
    if getattr(loader, "mirror_stem", None):  # reads a mirror file when one is set
        return loader(data_dir=data_dir)
    return loader()


__all__ = ["DATASETS", "Dataset", "dataset_names", "load_dataset", "register_dataset"]
