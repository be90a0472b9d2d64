"""Every name that crosses a process or lands in the store: environment variables, tags, metrics, artifacts.

One place, so that the run that writes a tag and the report that reads it can
never disagree. Plain strings: importing this module loads nothing.
"""

# --- environment variables ----------------------------------------------------------

ENV_DATA_DIR = "MLP_SWEEP_DATA_DIR"  # a folder with MNIST, when dataset.data_dir is null
# Set by the sweep callback for its jobs (not MLFLOW_RUN_ID: that one would
# hijack the job's own run, mlflow#15713). Read by the entry point only.
ENV_PARENT_RUN = "MLP_SWEEP_PARENT_RUN_ID"
ENV_VARYING = "MLP_SWEEP_VARYING"  # JSON list of the keys the sweep varies: they go into run names
ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"  # MLflow's own
# MLflow's own credential variables: the one way credentials reach a job (never a config value).
ENV_USERNAME = "MLFLOW_TRACKING_USERNAME"
ENV_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
ENV_TOKEN = "MLFLOW_TRACKING_TOKEN"
CREDENTIAL_VARS = (ENV_USERNAME, ENV_PASSWORD, ENV_TOKEN)

# --- a run's identity (mlp_sweep.store.identity): its parts, and one key for all of them ---

TAG_CONFIG_HASH = "mlp_sweep.config_hash"
TAG_SEED = "mlp_sweep.seed"
TAG_DATASET_SHA = "mlp_sweep.dataset_sha256"  # of the data actually read
TAG_CODE = "mlp_sweep.code_fingerprint"  # of the computation: its normalised code and the library versions
TAG_GRID_POINT = "mlp_sweep.grid_point"

# --- other tags of a run ------------------------------------------------------------

TAG_GIT_COMMIT = "mlp_sweep.git_commit"  # for the record only: not part of the identity
TAG_FAILURE = "mlp_sweep.failure"
TAG_PARENT = "mlflow.parentRunId"
TAG_MODEL_URI = "mlp_sweep.model_uri"  # models:/m-... of the run's logged Keras model
TAG_PROCESS = "mlp_sweep.process"  # host:pid:start of the process holding the run open
TAG_PRUNED = "mlp_sweep.pruned"  # on a run its stop rule ended early (a search's pruning): the epoch it stopped at
TAG_KERAS_BACKEND = "keras_backend"
TAG_KERAS_VERSION = "keras_version"
TAG_MLFLOW_VERSION = "mlflow_version"


def backend_version_tag(backend: str) -> str:
    """``tensorflow_version`` or ``jax_version``: the version tag of the backend a run used."""
    return f"{backend}_version"


# --- a sweep's parent run, and the experiment -----------------------------------------

TAG_SWEEP = "mlp_sweep.sweep"  # "parent" on a sweep's parent run
TAG_OVERRIDES = "mlp_sweep.overrides"
TAG_SWEEP_DIR = "mlp_sweep.sweep_dir"
TAG_WRITABLE = "mlp_sweep.writable"  # on the experiment: set where a server's write permission is checked
# On a sweep's parent run, one per run a job did not train because the run
# already held its grid point (FINISHED, or claimed by another command):
# <prefix><run id> -> grid point key. Keyed by run id, so no two can collide.
TAG_REUSED_PREFIX = "mlp_sweep.reused."

# --- a search (mlp_sweep.sweep.search) ------------------------------------------------

TAG_TRIAL = "mlp_sweep.trial"  # on each seed run: the trial number it was trained for
TAG_STUDY = "mlp_sweep.study"  # on each seed run and the sweep's parent run: the study name
TAG_STORAGE = "mlp_sweep.study_storage"  # on the parent run: where the study lives, for the report
SPACE_ATTR = "search_space"  # the study's user attribute that pins its space
OBJECTIVES_ATTR = "search_objectives"  # and its objectives, as "metric:direction"

# --- a race (mlp_sweep.sweep.race_launch) -----------------------------------------------

TAG_RACE = "mlp_sweep.race"  # "true" on a race's parent run, whose RACE_RECORD holds the race's record
RACE_RECORD = "race.json"  # its rule, rounds, who left when and why, each config's hash, the idle share

# --- metrics ----------------------------------------------------------------------------

N_PARAMS = "n_params"  # also a param
EPOCH_TIME = "epoch_time_s"
PREDICT_MS = "predict_ms_per_1k"  # the median wall time to predict 1,000 test images after a warm-up call
TRAIN_TIME = "train_time_s"
TEST_LOSS = "test_loss"
TEST_ACCURACY = "test_accuracy"
EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", EPOCH_TIME)  # step = epoch
# Once a run ends, every run logs these, and the epoch (1-based) whose early-stopping monitor (val_loss
# unless set) was best with that best value (best_val_loss); one that stopped early, the epoch it stopped at.
BEST_EPOCH = "best_epoch"
STOPPED_EPOCH = "stopped_epoch"


def best_metric(monitor: str) -> str:
    """``best_val_loss``: the best value of an early-stopping monitor, as a run logs it."""
    return f"best_{monitor}"


FINAL_METRICS = (TEST_LOSS, TEST_ACCURACY, TRAIN_TIME, PREDICT_MS, N_PARAMS, BEST_EPOCH)


def final_metrics(monitor: str, stopped_early: bool) -> tuple[str, ...]:
    """Every metric a run logs once, as it ends: FINAL_METRICS, ``best_<monitor>``, and ``stopped_epoch``
    where early stopping ended it before its epochs."""
    return (*FINAL_METRICS, best_metric(monitor), *((STOPPED_EPOCH,) if stopped_early else ()))


PRUNED_AT = "pruned_at_epoch"  # in train()'s returned metrics when its stop rule ended it
OBJECTIVE = "val_accuracy"  # what a search maximises and the report ranks by: never a test metric

# --- artifacts ------------------------------------------------------------------------

# What every run logs (the model is a LoggedModel, named by TAG_MODEL_URI).
CURVES_PNG = "curves.png"
CONFUSION_PNG = "confusion_matrix.png"
CONFUSION_JSON = "confusion_matrix.json"  # its counts: {"counts": rows of true class, columns of predicted class}
SUMMARY_TXT = "model_summary.txt"
CONFIG_YAML = "config.yaml"
RUN_ARTIFACTS = (CURVES_PNG, CONFUSION_PNG, CONFUSION_JSON, SUMMARY_TXT, CONFIG_YAML)
REPORT_DIR = "report"  # on a sweep's parent run: the report's files
