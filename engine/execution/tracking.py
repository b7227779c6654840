"""Ray Tune's own MLflow / Weights & Biases logger callbacks for a sweep's ``tracking:``.

The callbacks run on the driver (W&B: in a zero-CPU logging actor per trial on the driver's
node). Each trial becomes one run: its config (dataset, fold, method, generator, scale, mix,
model and fine-tuning settings) as parameters, every ``tune.report`` as metrics — one per
evaluation (``val_*``, ``eval_test_*``, ``train_loss``) and the final row (``test_*`` and
``selected_val_*`` at the selected step, zero-shot scores, timings). MLflow records them at the
fine-tuning step; W&B at Tune's report index, with ``step`` logged beside it.
Tracking packages are imported only when asked for.
"""

from __future__ import annotations

import os
from typing import Any

from engine.core.errors import CausalMixError
from engine.spec.tracking import TrackingSpec


def tracking_callbacks(tracking: TrackingSpec | None, sweep_name: str) -> list[Any]:
    """Fresh callbacks for one Tune run (one per part: they hold per-run state)."""
    if tracking is None:
        return []
    if tracking.backend == "mlflow":
        return [_mlflow_callback(tracking, sweep_name)]
    return [_wandb_callback(tracking, sweep_name)]


def renamed_final(result: dict[str, Any]) -> dict[str, Any]:
    """A trial's final report with its ``val_*`` scores (those of the selected step) as
    ``selected_val_*``, so that the ``val_*`` curves hold the evaluations only."""
    if not result.get("final"):
        return result
    return {f"selected_{k}" if k.startswith("val_") else k: v for k, v in result.items()}


def _mlflow_callback(tracking: TrackingSpec, sweep_name: str) -> Any:
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    uri = tracking.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri is not None and uri.startswith("file:"):
        # MLflow 3 refuses its (maintenance-mode) file store unless opted in; a sweep
        # file that names one has opted in.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

    class StepMLflowCallback(MLflowLoggerCallback):
        """Tune's MLflow callback, with each result logged at its fine-tuning step."""

        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            result, step = renamed_final(result), result.get("step")
            if isinstance(step, bool) or not isinstance(step, int):
                super().log_trial_result(iteration, trial, result)
                return
            run_id = self._trial_runs[trial]
            self.mlflow_util.log_metrics(run_id=run_id, metrics_to_log=result, step=step)

    return StepMLflowCallback(tracking_uri=uri, experiment_name=tracking.experiment,
                              tags={"causalmix.sweep": sweep_name})


def _wandb_callback(tracking: TrackingSpec, sweep_name: str) -> Any:
    from ray.air.integrations.wandb import WandbLoggerCallback

    class FinalWandbCallback(WandbLoggerCallback):
        """Tune's W&B callback, with the final row's ``val_*`` kept off the curves."""

        def setup(self, *args: Any, **kwargs: Any) -> None:
            # Tune's callback asks for an API key unless WANDB_MODE says offline; a sweep
            # file's ``mode: offline`` says so too.
            old = os.environ.get("WANDB_MODE")
            if self.kwargs.get("mode") == "offline":
                os.environ["WANDB_MODE"] = "offline"
            try:
                super().setup(*args, **kwargs)
            except ValueError as exc:
                raise CausalMixError(f"tracking.wandb: {exc} (or use mode: offline)") from None
            finally:
                if old is None:
                    os.environ.pop("WANDB_MODE", None)
                else:
                    os.environ["WANDB_MODE"] = old

        def log_trial_result(self, iteration: int, trial: Any, result: dict) -> None:
            super().log_trial_result(iteration, trial, renamed_final(result))

    kwargs: dict[str, Any] = {"tags": [sweep_name]}
    if tracking.mode is not None:
        kwargs["mode"] = tracking.mode
    if tracking.dir is not None:
        os.makedirs(tracking.dir, exist_ok=True)
        kwargs["dir"] = tracking.dir
    callback = FinalWandbCallback(project=tracking.project, group=tracking.group, **kwargs)
    callback.setup()  # credentials checked now, in one line, not inside Tune's run
    return callback
