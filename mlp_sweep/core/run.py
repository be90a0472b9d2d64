"""One run: claim its grid point, train and evaluate it (:mod:`~mlp_sweep.core.step`), log it all to MLflow.

``train(cfg)`` is the function the command line and the tests call. A sweep
hands its job what the job needs to know of it (its parent run, the keys it
varies, a stop rule, extra tags) as a :class:`Job`: this layer knows nothing
of sweeps or searches. The modules of this package are the only ones that
import TensorFlow or Keras.
"""

import math
import re
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import keras
import mlflow
import mlflow.data
import numpy as np
from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from mlp_sweep import compat, names
from mlp_sweep.core import data, run_figures, runtime, step
from mlp_sweep.errors import DivergedError, interruption
from mlp_sweep.store import identity, redaction, resume, tracking
from mlp_sweep.validation import validate

StopRule = Callable[[int, float], bool]  # (1-based epoch, val_accuracy) -> stop after this epoch?


@dataclass(frozen=True)
class Job:
    """What a sweep tells one of its jobs; a run outside a sweep is ``Job()``."""

    parent_run_id: str | None = None  # the sweep's parent MLflow run
    varying: Sequence[str] = ()  # the keys the sweep varies: they go into the run's name
    stop_rule: StopRule | None = None  # asked after each epoch (a search's pruning)
    tags: Mapping[str, str] = field(default_factory=dict)  # more tags for the run (a search's trial and study)


class EpochTracker(keras.callbacks.Callback):
    """Times each epoch, logs it to MLflow at step = epoch, stops on a diverged loss
    or where the job's stop rule says.

    Our own callback rather than ``mlflow.tensorflow.autolog``: autolog needs
    tensorboard and logs validation metrics at step 0 (mlflow#14293).
    """

    def __init__(
        self,
        client: MlflowClient,
        run_id: str,
        label: str,
        epochs: int,
        print_lines: bool,
        stop_rule: StopRule | None = None,
    ):
        super().__init__()
        self.client, self.run_id, self.label, self.epochs = client, run_id, label, epochs
        self.print_lines, self.stop_rule = print_lines, stop_rule
        self.epoch, self.stopped_at = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.started = epoch + 1, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise DivergedError(f"loss became {loss} at epoch {self.epoch}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        values = {k: float(logs[k]) for k in names.EPOCH_METRICS if k in logs}
        values["epoch_time_s"] = time.perf_counter() - self.started
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, self.epoch) for k, v in values.items()])
        if self.print_lines:
            print(
                f"  {self.label} epoch {self.epoch}/{self.epochs}  loss {values['loss']:.4f}  "
                f"acc {values['accuracy']:.4f}  val_loss {values['val_loss']:.4f}  "
                f"val_acc {values['val_accuracy']:.4f}  {values['epoch_time_s']:.1f}s",
                flush=True,
            )
        if self.stop_rule is not None and self.stop_rule(self.epoch, values["val_accuracy"]):
            self.model.stop_training, self.stopped_at = True, self.epoch


def compiled_model(cfg: DictConfig, splits: data.Splits, keras_defaults: bool = False) -> keras.Model:
    """The config's model for ``splits``, seeded and compiled, in a fresh session on the config's threads.

    ``keras_defaults`` leaves out the speed settings, as a plain Keras script
    would (the benchmark's comparison arms).
    """
    runtime.use_threads(cfg.trainer.threads)
    plain = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in ("model", "reg", "optimizer")}
    # Keras' progress bar counts in executions: more steps per execution than an epoch has batches
    # would read 32/10. One execution never runs past its epoch, so fewer leave the numbers as they are.
    per_execution = min(cfg.trainer.steps_per_execution, batches_per_epoch(len(splits.x_train), cfg.trainer.batch_size))
    options = {} if keras_defaults else runtime.compile_options(per_execution)
    return step.seeded_model(
        plain["model"],
        plain["reg"],
        plain["optimizer"],
        cfg.trainer.seed,
        options,
        input_dim=splits.input_dim,
        n_classes=splits.n_classes,
    )


def batches_per_epoch(n_train: int, batch_size: int) -> int:
    """The training batches of one epoch, the last one partly filled."""
    return -(-n_train // batch_size)


def schedule(cfg: DictConfig) -> step.Schedule:
    """The config's epochs, batches and early stopping, as the fit step takes them."""
    stop = cfg.trainer.early_stopping
    return step.Schedule(
        epochs=cfg.trainer.epochs,
        batch_size=cfg.trainer.batch_size,
        seed=cfg.trainer.seed,
        patience=stop.patience,
        monitor=stop.monitor,
    )


def train(cfg: DictConfig, progress: str = "bar", job: Job = Job()) -> dict[str, float]:
    """Train and evaluate one config; return its final metrics.

    ``progress`` is "bar" (Keras' bar per epoch), "line" (one line per epoch,
    for sweeps) or "none". A grid point that a FINISHED run already holds, or
    that another command is training, is not trained again: its run's metrics
    come back instead (those it has so far, for a run still training).
    """
    validate(cfg)
    runtime.check_backend(cfg.trainer.backend)  # refuses a process whose Keras runs another backend
    runtime.use_compile_cache(cfg.trainer.compile_cache)
    client, experiment_id = tracking.open_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    splits = data.from_config(cfg.dataset)  # its checksum is part of the run's identity
    versions = runtime.library_versions()
    point = identity.grid_point(cfg, splits.sha256, versions)
    name = identity.run_name(cfg, job.varying)
    tags = {
        names.TAG_GIT_COMMIT: tracking.git_commit(),
        **versions,
        names.TAG_MLFLOW_VERSION: mlflow.__version__,
        **({names.TAG_PARENT: job.parent_run_id} if job.parent_run_id else {}),
        **job.tags,
    }
    claim = resume.claim(client, experiment_id, point, name, tags, rerun=cfg.tracking.rerun)
    if claim.holder is not None:
        return reuse(client, claim.holder, name, job.parent_run_id)
    model = compiled_model(cfg, splits)
    run_id = claim.run_id
    try:
        params = {
            **identity.flat_params(cfg),
            names.N_PARAMS: model.count_params(),
            "n_hidden_layers": len(cfg.model.widths),
            "input_dim": splits.input_dim,
            "n_classes": splits.n_classes,
        }
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        log_dataset(client, run_id, splits, cfg)
        metrics = fit_and_evaluate(client, run_id, cfg, model, splits, name, progress, job.stop_rule)
        log_model(client, run_id, model, splits.x_test[:8], cfg, name, versions)
    except BaseException as e:
        stopped = interruption(e)
        client.set_tag(run_id, names.TAG_FAILURE, f"{type(e).__name__}: {e}"[:5000])
        # Stopped by the user, not failed.
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED if stopped else RunStatus.FAILED))
        if stopped is not None and stopped is not e:
            raise stopped from e  # the stop goes on up, not the error a library raised on its way out
        raise
    if names.PRUNED_AT in metrics:  # its stop rule ended it: not a whole run, never reused
        client.set_tag(run_id, names.TAG_PRUNED, str(metrics[names.PRUNED_AT]))
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
        print(f"{name}: pruned after epoch {metrics[names.PRUNED_AT]} (its stop rule: the search's pruner)", flush=True)
    else:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
    return metrics


def reuse(client: MlflowClient, holder: mlflow.entities.Run, name: str, parent: str | None) -> dict[str, float]:
    """Say which run holds this grid point, list it on the sweep's parent, and hand back its metrics."""
    if holder.info.status == "FINISHED":
        print(
            f"{name}: skipped, already FINISHED as MLflow run {holder.info.run_id} "
            "(tracking.rerun=true trains it again)",
            flush=True,
        )
    else:
        print(
            f"{name}: not trained here: MLflow run {holder.info.run_id} holds this grid point and is training it "
            f"(process {holder.data.tags.get(names.TAG_PROCESS, '?')}); the sweep's report counts it once it finishes",
            flush=True,
        )
    resume.record_reuse(client, parent, [holder])
    return dict(holder.data.metrics)


DATASET_ATTEMPTS = 3  # parallel jobs may race to create the same dataset row
MAX_DIGEST_CHARS = 36  # what MLflow stores of a dataset digest; the full checksum is the run's dataset tag


def log_dataset(client: MlflowClient, run_id: str, splits: data.Splits, cfg: DictConfig) -> None:
    """The data as an MLflow dataset input, its digest the checksum: the UI's Dataset column shows what each run saw."""
    with warnings.catch_warnings():  # MLflow registers its local source class twice, then warns it is ambiguous
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted in multiple ways")
        source = str(data.resolve_data_dir(cfg.dataset.data_dir) or f"keras.datasets.{cfg.dataset.source}")
        dataset = mlflow.data.from_numpy(
            splits.x_train,
            targets=splits.y_train,
            name=cfg.dataset.name,
            digest=splits.sha256[:MAX_DIGEST_CHARS],
            source=source,
        )
    entry = compat.dataset_input(dataset, "training")
    for attempt in range(DATASET_ATTEMPTS):
        try:
            return client.log_inputs(run_id, datasets=[entry])
        except MlflowException:  # parallel jobs creating the same dataset row at once (its name and digest are unique)
            if attempt == DATASET_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))  # then the other job's row exists, and the input links to it


def fit_and_evaluate(
    client: MlflowClient,
    run_id: str,
    cfg: DictConfig,
    model: keras.Model,
    splits: data.Splits,
    name: str,
    progress: str,
    stop_rule: StopRule | None,
) -> dict[str, float]:
    """Fit on train (validating on val), then touch the test set once; log the metrics, figures and texts."""
    tracker = EpochTracker(
        client, run_id, name, cfg.trainer.epochs, print_lines=progress == "line", stop_rule=stop_rule
    )
    started = time.perf_counter()
    fitting = schedule(cfg)
    history = step.fit(model, splits, fitting, callbacks=[tracker], verbose=1 if progress == "bar" else 0)
    train_time = time.perf_counter() - started
    test, predicted = step.evaluate(model, splits)

    final = {k: float(v[-1]) for k, v in history.items() if k in names.EPOCH_METRICS}
    final |= best_epoch(history, fitting.monitor, fitting.epochs if fitting.patience is not None else None)
    final |= {
        **test,
        names.TRAIN_TIME: train_time,
        names.PREDICT_MS: predict_ms_per_1k(model, splits.x_test),
        names.N_PARAMS: float(model.count_params()),
    }
    if tracker.stopped_at is not None:
        final[names.PRUNED_AT] = tracker.stopped_at
    now = int(time.time() * 1000)
    once = names.final_metrics(fitting.monitor, stopped_early=names.STOPPED_EPOCH in final)
    client.log_batch(run_id, metrics=[Metric(k, final[k], now, 0) for k in once])
    client.log_figure(run_id, run_figures.curves(history, name), names.CURVES_PNG)
    counts = run_figures.confusion_counts(splits.y_test, predicted, splits.n_classes)
    client.log_figure(run_id, run_figures.confusion_matrix(counts, name), names.CONFUSION_PNG)
    client.log_dict(run_id, {"counts": counts.tolist()}, names.CONFUSION_JSON)
    summary: list[str] = []
    model.summary(print_fn=summary.append)
    client.log_text(run_id, "\n".join(summary), names.SUMMARY_TXT)
    client.log_text(run_id, redaction.redact_text(OmegaConf.to_yaml(cfg, resolve=True)), names.CONFIG_YAML)
    return final


def best_epoch(history: Mapping[str, Sequence[float]], monitor: str, planned: int | None) -> dict[str, float]:
    """The epoch (1-based) whose ``monitor`` was best, and that best: every run logs them, so that a report
    can compare runs at their best validation epoch. ``planned``: the epochs of a run that may stop early;
    where it stopped before them, ``stopped_epoch`` too."""
    values = np.asarray(history[monitor], dtype=float)
    best = int(np.argmax(values) if "accuracy" in monitor else np.argmin(values))  # the first of equal bests
    found = {names.BEST_EPOCH: best + 1.0, names.best_metric(monitor): float(values[best])}
    if planned is not None and len(values) < planned:
        found[names.STOPPED_EPOCH] = float(len(values))
    return found


PREDICT_ROWS = 1000
PREDICT_REPEATS = 7


def predict_ms_per_1k(model: keras.Model, x: np.ndarray) -> float:
    """Milliseconds to predict 1,000 test images in one call, on the run's backend and threads: the median of
    :data:`PREDICT_REPEATS` calls after a warm-up call that traces and compiles (a cost a user pays once).

    A test set smaller than 1,000 images (a smoke subset) is repeated to 1,000 rows.
    """
    rows = np.resize(x, (PREDICT_ROWS, x.shape[1]))
    model.predict(rows, batch_size=PREDICT_ROWS, verbose=0)
    times = []
    for _ in range(PREDICT_REPEATS):
        started = time.perf_counter()
        model.predict(rows, batch_size=PREDICT_ROWS, verbose=0)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def log_model(
    client: MlflowClient,
    run_id: str,
    model: keras.Model,
    x_example: np.ndarray,
    cfg: DictConfig,
    run_name: str,
    versions: Mapping[str, str],
) -> None:
    """The model in MLflow's Keras flavor, with a signature, linked to the run and named for it,
    so that the UI's Models tab tells a sweep's models apart.

    The flavor speaks only MLflow's fluent API, so this one call runs with the run
    made active on the client's store, and leaves it RUNNING: ``train`` ends it
    with the status it earned. The requirements are given (``versions``: the
    run's library versions), not inferred: inference loads the model in a
    subprocess and costs seconds per run.
    """
    if not cfg.tracking.log_model:
        return
    backend = versions[names.TAG_KERAS_BACKEND]
    pins = {
        backend: versions[names.backend_version_tag(backend)],
        "keras": keras.__version__,
        "mlflow": mlflow.__version__,
    }
    signature = infer_signature(x_example, keras.ops.convert_to_numpy(model(x_example, training=False)))
    mlflow.set_tracking_uri(client.tracking_uri)
    mlflow.start_run(run_id=run_id)
    try:
        info = mlflow.keras.log_model(
            model,
            name=re.sub(r"[/:.%\"']", "_", run_name),  # characters MLflow refuses in a model name
            signature=signature,
            pip_requirements=[f"{package}=={version}" for package, version in pins.items()],
        )
    finally:
        mlflow.end_run(RunStatus.to_string(RunStatus.RUNNING))
    client.set_tag(run_id, names.TAG_MODEL_URI, info.model_uri)
