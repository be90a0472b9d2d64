"""One run: seed, build, train, evaluate on the test set once, log it all to MLflow.

``train(cfg)`` is the function the command line and the tests call. This is
the only module (with ``model``) that imports TensorFlow.
"""

import math
import os
import re
import time
import warnings
from pathlib import Path

import keras
import mlflow
import mlflow.data
import numpy as np
from mlflow.entities import Metric, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from omegaconf import DictConfig, OmegaConf

from mlp_sweep import data, identity, plots, resume, runtime, search, tracking
from mlp_sweep.errors import ConfigError, DivergedError
from mlp_sweep.model import build_mlp, build_optimizer
from mlp_sweep.schema import validate

class EpochTracker(keras.callbacks.Callback):
    """Times each epoch, logs it to MLflow at step = epoch, stops on a diverged loss
    or where ``stop_rule(epoch, val_accuracy)`` says (a search's pruning).

    Our own callback rather than ``mlflow.tensorflow.autolog``: autolog needs
    tensorboard and logs validation metrics at step 0 (mlflow#14293).
    """

    def __init__(self, run_id: str, label: str, epochs: int, print_lines: bool, stop_rule=None):
        super().__init__()
        self.client = mlflow.MlflowClient()
        self.run_id, self.label, self.epochs, self.print_lines = run_id, label, epochs, print_lines
        self.epoch, self.stop_rule, self.stopped_at = 0, stop_rule, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.started = epoch + 1, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise DivergedError(f"loss became {loss} at epoch {self.epoch}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        values = {k: float(logs[k]) for k in tracking.EPOCH_METRICS if k in logs}
        values["epoch_time_s"] = time.perf_counter() - self.started
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, self.epoch) for k, v in values.items()])
        if self.print_lines:
            print(
                f"  {self.label} epoch {self.epoch}/{self.epochs}  loss {values['loss']:.4f}  acc {values['accuracy']:.4f}"
                f"  val_loss {values['val_loss']:.4f}  val_acc {values['val_accuracy']:.4f}  {values['epoch_time_s']:.1f}s",
                flush=True,
            )
        if self.stop_rule is not None and self.stop_rule(self.epoch, values["val_accuracy"]):
            self.model.stop_training, self.stopped_at = True, self.epoch


def load_data(cfg: DictConfig) -> data.Splits:
    d = cfg.dataset
    return data.load(data_dir=d.data_dir, val_size=d.val_size, split_seed=d.split_seed, train_size=d.train_size,
                     test_size=d.test_size, verify_checksum=d.verify_checksum)


def use_threads(threads: int | None) -> None:
    """Cap the backend's threads, so that parallel jobs do not fight over the cores.

    Only possible before the backend's runtime starts (TensorFlow's thread pools,
    XLA's CPU client on JAX): a process that runs several jobs (a reused joblib
    worker) keeps its first job's setting.
    """
    threads = threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
    if not threads:
        return
    if keras.backend.backend() == "jax":  # read when JAX starts its CPU client, at the first computation
        flags = os.environ.get("XLA_FLAGS", "")
        if "intra_op_parallelism_threads" not in flags:  # a reused worker's later jobs: already set, and read once
            eigen = f"--xla_cpu_multi_thread_eigen={str(threads > 1).lower()}"
            os.environ["XLA_FLAGS"] = f"{flags} {eigen} intra_op_parallelism_threads={threads}".strip()
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # runtime already started: this process keeps its threads
        pass


def use_compile_cache(folder: str | None) -> None:
    """Keep XLA's compiled programs on disk (JAX only): a job whose step another job compiled loads it.

    A config's seeds share their programs, and a model's initializers compile once per
    shape, so a multi-seed sweep, a search's replicates, a resumed sweep and the other
    worker of a parallel one skip seconds of compiling a job. JAX keys each entry by the
    program, the compiler's options and versions: a hit is the same executable, the same
    numbers. Read at the process's first compile: a reused worker keeps its first job's folder.
    """
    if folder is None or keras.backend.backend() != "jax":
        return
    import jax

    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"trainer.compile_cache={folder} cannot be created ({e.strerror}): "
                          "give a writable folder, or null to leave JAX's own setting") from e
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # the initializers' small programs too


def backend_versions() -> dict[str, str]:
    """Keras, its backend and MLflow, as tags and as the logged model's requirements."""
    backend = keras.backend.backend()
    module = __import__(backend)
    return {"keras_backend": backend, f"{backend}_version": module.__version__, "keras_version": keras.__version__,
            "mlflow_version": mlflow.__version__}


def compiled_model(cfg: DictConfig, keras_defaults: bool = False) -> keras.Model:
    """A fresh session, seeded, with the configured model and optimizer.

    ``keras_defaults`` leaves out the speed settings, as a plain Keras script
    would (the benchmark's comparison arms).
    """
    use_threads(cfg.trainer.threads)
    keras.backend.clear_session(free_memory=True)  # jobs of one process must not pile up graphs (it runs gc.collect)
    keras.utils.set_random_seed(cfg.trainer.seed)
    m, r, o = cfg.model, cfg.reg, cfg.optimizer
    initializers = OmegaConf.to_container(m.initializers, resolve=True)
    model = build_mlp(widths=list(m.widths), initializers=initializers, activation=m.activation,
                      batch_norm=r.batch_norm, dropout=r.dropout)
    speed = {} if keras_defaults else {
        "steps_per_execution": cfg.trainer.steps_per_execution,
        # On TensorFlow, XLA made BN+dropout MLPs 5x slower on CPU; on JAX, XLA is the backend:
        # without jit every op runs eagerly (mlp2: 12 s an epoch instead of 0.7).
        "jit_compile": keras.backend.backend() == "jax",
    }
    model.compile(optimizer=build_optimizer(o.name, o.lr, OmegaConf.to_container(o.args, resolve=True)),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"], **speed)
    return model


def train(cfg: DictConfig, progress: str = "bar") -> dict[str, float]:
    """Train and evaluate one config; return its final metrics.

    ``progress`` is "bar" (Keras' bar per epoch), "line" (one line per epoch,
    for sweeps) or "none". A grid point that a FINISHED run already holds, or
    that another command is training, is not trained again: its run's metrics
    come back instead (those it has so far, for a run still training).
    """
    validate(cfg)
    runtime.use_backend(cfg.trainer.backend)  # refuses a process whose Keras runs another backend
    use_compile_cache(cfg.trainer.compile_cache)
    experiment_id = tracking.use_experiment(cfg.tracking.uri, cfg.tracking.experiment)
    splits = load_data(cfg)  # its checksum is part of the run's identity
    point = identity.grid_point(cfg, splits.sha256)
    name = identity.run_name(cfg)
    parent = os.environ.get(tracking.ENV_PARENT_RUN)
    tags = {
        tracking.TAG_GIT_COMMIT: tracking.git_commit(),
        **backend_versions(),
        **({tracking.TAG_PARENT: parent} if parent else {}),
        **search.run_tags(cfg),
    }
    claim = resume.claim(experiment_id, point, name, tags, rerun=cfg.tracking.rerun)
    if claim.holder is not None:
        return reuse(claim.holder, name, parent)
    model = compiled_model(cfg)
    with mlflow.start_run(run_id=claim.run_id) as run:
        try:
            mlflow.log_params({**identity.flat_params(cfg), "n_params": model.count_params(),
                               "n_hidden_layers": len(cfg.model.widths)})
            log_dataset(splits, cfg)
            metrics = fit_and_evaluate(cfg, model, splits, run.info.run_id, name, progress)
            log_model(model, splits.x_test[:8], cfg, name)
            if search.PRUNED_AT in metrics:
                search.end_pruned(name, metrics[search.PRUNED_AT])
        except BaseException as e:
            mlflow.set_tag(tracking.TAG_FAILURE, f"{type(e).__name__}: {e}"[:5000])
            if isinstance(e, KeyboardInterrupt):  # stopped by the user, not failed (start_run would say FAILED)
                mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
            raise
    return metrics


def reuse(holder: mlflow.entities.Run, name: str, parent: str | None) -> dict[str, float]:
    """Say which run holds this grid point, list it on the sweep's parent, and hand back its metrics."""
    if holder.info.status == "FINISHED":
        print(f"{name}: skipped, already FINISHED as MLflow run {holder.info.run_id} (tracking.rerun=true trains it again)",
              flush=True)
    else:
        print(f"{name}: not trained here: MLflow run {holder.info.run_id} holds this grid point and is training it "
              f"(process {holder.data.tags.get(tracking.TAG_PROCESS, '?')}); the sweep's report counts it once it finishes",
              flush=True)
    resume.record_reuse(parent, [holder])
    return dict(holder.data.metrics)


DATASET_ATTEMPTS = 3  # parallel jobs may race to create the same dataset row
MAX_DIGEST_CHARS = 36  # what MLflow stores of a dataset digest; the full checksum is the run's dataset tag


def log_dataset(s: data.Splits, cfg: DictConfig) -> None:
    """The data as an MLflow dataset input, its digest the checksum: the UI's Dataset column shows what each run saw."""
    with warnings.catch_warnings():  # MLflow registers its local source class twice, then warns it is ambiguous
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted in multiple ways")
        dataset = mlflow.data.from_numpy(s.x_train, targets=s.y_train, name=cfg.dataset.name,
                                         digest=s.sha256[:MAX_DIGEST_CHARS],
                                         source=str(data.resolve_data_dir(cfg.dataset.data_dir) or "keras.datasets.mnist"))
    for attempt in range(DATASET_ATTEMPTS):
        try:
            return mlflow.log_input(dataset, context="training")
        except MlflowException:  # parallel jobs creating the same dataset row at once (its name and digest are unique)
            if attempt == DATASET_ATTEMPTS - 1:
                raise
            time.sleep(0.2 * (attempt + 1))  # then the other job's row exists, and the input links to it



def fit_and_evaluate(cfg: DictConfig, model: keras.Model, s: data.Splits, run_id: str, name: str, progress: str) -> dict[str, float]:
    """Fit on train (validating on val), then touch the test set once."""
    tracker = EpochTracker(run_id, name, cfg.trainer.epochs, print_lines=progress == "line", stop_rule=search.stop_rule(cfg))
    started = time.perf_counter()
    history = model.fit(
        s.x_train, s.y_train,
        validation_data=(s.x_val, s.y_val),
        epochs=cfg.trainer.epochs,
        batch_size=cfg.trainer.batch_size,
        callbacks=[tracker],
        verbose=1 if progress == "bar" else 0,
    ).history
    train_time = time.perf_counter() - started

    probs = keras.ops.convert_to_numpy(model(s.x_test, training=False))  # one eager pass: nothing to trace
    predicted = probs.argmax(axis=1)
    final = {k: float(v[-1]) for k, v in history.items() if k in tracking.EPOCH_METRICS}
    final |= {
        "test_loss": float(np.mean(keras.losses.sparse_categorical_crossentropy(s.y_test, probs))),
        "test_accuracy": float(np.mean(predicted == s.y_test)),
        "train_time_s": train_time,
    }
    if tracker.stopped_at is not None:
        final[search.PRUNED_AT] = tracker.stopped_at
    mlflow.log_metrics({k: final[k] for k in tracking.FINAL_METRICS})
    plots.log_figure(run_id, plots.curves(history, name), tracking.CURVES_PNG)
    plots.log_figure(run_id, plots.confusion_matrix(s.y_test, predicted, name), tracking.CONFUSION_PNG)
    summary: list[str] = []
    model.summary(print_fn=summary.append)
    mlflow.log_text("\n".join(summary), tracking.SUMMARY_TXT)
    mlflow.log_text(tracking.redact_text(OmegaConf.to_yaml(cfg, resolve=True)), tracking.CONFIG_YAML)
    return final


def log_model(model: keras.Model, x_example: np.ndarray, cfg: DictConfig, run_name: str) -> None:
    """The model in MLflow's Keras flavor, with a signature, linked to the run and named for it,
    so that the UI's Models tab tells a sweep's models apart.

    The requirements are given, not inferred: inference loads the model in a
    subprocess and costs seconds per run.
    """
    if not cfg.tracking.log_model:
        return
    versions = backend_versions()
    backend = versions["keras_backend"]
    signature = infer_signature(x_example, keras.ops.convert_to_numpy(model(x_example, training=False)))
    info = mlflow.keras.log_model(
        model,
        name=re.sub(r"[/:.%\"']", "_", run_name),  # characters MLflow refuses in a model name
        signature=signature,
        pip_requirements=[f"{package}=={versions[f'{package}_version']}" for package in (backend, "keras", "mlflow")],
    )
    mlflow.set_tag(tracking.TAG_MODEL_URI, info.model_uri)
