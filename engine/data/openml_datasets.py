"""TabArena classification datasets from OpenML (needs network; cached by scikit-learn).

``openml/<data id>`` loads any OpenML dataset by id; ``tabarena/<name>`` resolves a TabArena
name to its OpenML data id. Downloads go to scikit-learn's data home (``SCIKIT_LEARN_DATA``).
"""

from __future__ import annotations

import pandas as pd

from engine.data.registry import Dataset, register_dataset
from engine.errors import DataError

# TabArena-v0.1 classification datasets with their OpenML data ids.
TABARENA_DATA_IDS: dict[str, int] = {
    "anneal": 46906,
    "Bank_Customer_Churn": 46911,
    "blood-transfusion-service-center": 46913,
    "churn": 46915,
    "coil2000_insurance_policies": 46916,
    "credit-g": 46918,
    "diabetes": 46921,
    "E-CommereShippingData": 46924,
    "Fitness_Club": 46927,
    "heloc": 46932,
    "in_vehicle_coupon_recommendation": 46937,
    "online_shoppers_intention": 46947,
    "polish_companies_bankruptcy": 46950,
    "splice": 46958,
    "jm1": 46979,
}


def load_openml(data_id: int, name: str | None = None) -> Dataset:
    """Fetch an OpenML dataset (its default target) as a ``Dataset``."""
    from sklearn.datasets import fetch_openml

    label = name or f"openml/{data_id}"
    try:
        bunch = fetch_openml(data_id=data_id, as_frame=True, parser="auto")
    except Exception as exc:  # noqa: BLE001 - network/cache failures become one line
        raise DataError(f"{label}: cannot fetch OpenML data id {data_id} "
                        f"({type(exc).__name__}; offline? use a local file instead)") from None
    if bunch.target is None or isinstance(bunch.target, pd.DataFrame):
        raise DataError(f"{label}: OpenML data id {data_id} has no single default target")
    return Dataset(name=label, X=bunch.data, y=bunch.target.rename("target"))


def _register_tabarena(name: str, data_id: int) -> None:
    @register_dataset(f"tabarena/{name}")
    def _load() -> Dataset:
        return load_openml(data_id, name=f"tabarena/{name}")


for _name, _id in TABARENA_DATA_IDS.items():
    _register_tabarena(_name, _id)
