"""Process-wide settings, never made on import: Keras' backend, quiet TensorFlow, a lighter
garbage collector, the backend's threads and compile cache, and the speed settings of a model.

None of it changes a run's numbers, so none of it is in a run's identity. What must be
in the environment before Keras loads is returned by :func:`process_environment` for the
entry point to set: nothing here writes the environment. Keras is imported inside the
functions that need it.
"""

import fcntl
import functools
import gc
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from mlp_sweep import names
from mlp_sweep.errors import ConfigError


def process_environment(backend: str | None = None, threads: int | None = None) -> dict[str, str]:
    """The variables to set before Keras (and TensorFlow, and XLA) first load, for the entry point to set.

    - ``KERAS_BACKEND``: Keras reads it once, at its first import.
    - ``TF_CPP_MIN_LOG_LEVEL`` (unless set): TensorFlow's C++ start-up noise stays out of
      every job's output. On a machine with no NVIDIA device its CUDA probe fails with an
      error line (``failed call to cuInit``) that reads as something broken: there, errors
      are silenced too. Where a GPU is present its messages stay.
    - ``XLA_FLAGS`` on JAX with a thread cap (``threads``, else ``$OMP_NUM_THREADS``, which
      the joblib launcher sets to cores // n_jobs in each worker): XLA reads them when JAX
      starts its CPU client. They do not cap XLA's threads on their own: what keeps parallel
      jobs off each other's cores is :func:`own_cores`. A process that already carries a cap
      (a reused worker's later jobs) keeps it.
    """
    env = {} if "TF_CPP_MIN_LOG_LEVEL" in os.environ else {"TF_CPP_MIN_LOG_LEVEL": "2" if has_gpu() else "3"}
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    threads = threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
    flags = os.environ.get("XLA_FLAGS", "")
    if backend == "jax" and threads and "intra_op_parallelism_threads" not in flags:
        eigen = f"--xla_cpu_multi_thread_eigen={str(threads > 1).lower()}"
        env["XLA_FLAGS"] = f"{flags} {eigen} intra_op_parallelism_threads={threads}".strip()
    return env


CORE_LOCKS = Path(tempfile.gettempdir()) / "mlp_sweep_cores"  # one lock file per core, held by the process on it
_core_locks: list[int] = []  # the descriptors of the cores' lock files this process holds, open while it runs


@functools.cache
def own_cores(threads: int | None, locks: Path = CORE_LOCKS) -> tuple[int, ...]:
    """Pin this process to ``threads`` cores of its own, where a thread cap leaves room for that;
    the cores, or () where it stays on all of them. Call it before Keras (and its backend) loads.

    ``threads`` as :func:`process_environment` reads it (else ``$OMP_NUM_THREADS``, which the
    joblib launcher sets to cores // n_jobs). XLA's CPU thread flags do not cap its threads (a
    jitted loop with ``intra_op_parallelism_threads=1`` ran on both cores), so two parallel
    workers share every core unless pinned; XLA and TensorFlow size their thread pools by the
    cores a process may run on. A core is taken by locking its file in ``locks`` (released when
    the process ends, however it ends), so that the workers of a sweep, and of the other
    commands on the machine, each find cores no other one holds; where too few are free, the
    process is left as it was. Once per process: a reused worker keeps its cores.
    """
    threads = threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
    allowed = sorted(os.sched_getaffinity(0))
    if not threads or threads >= len(allowed):
        return ()
    taken = []
    for core in allowed:
        try:
            locks.mkdir(parents=True, exist_ok=True)
            fd = os.open(locks / f"core{core}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError:  # another user's lock folder: this process cannot take part
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process runs on this core
            os.close(fd)
            continue
        taken.append((core, fd))
        if len(taken) == threads:
            break
    if len(taken) < threads:
        for _, fd in taken:
            os.close(fd)
        return ()
    _core_locks.extend(fd for _, fd in taken)
    cores = tuple(core for core, _ in taken)
    os.sched_setaffinity(0, cores)
    return cores


def has_gpu() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (Keras loads it on either backend) with the C-level stderr muted, on a CPU-only machine.

    TensorFlow 2.21 prints its start-up lines (oneDNN, "Could not find cuda
    drivers") before its logging is set up, whatever TF_CPP_MIN_LOG_LEVEL says.
    A failed import still raises, with its traceback, once stderr is back.
    """
    if has_gpu() or "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@functools.cache
def settle_process() -> None:
    """Once per process, after TensorFlow has loaded: fewer warnings, a lighter garbage collector.

    TensorFlow warns each time a job traces its step function anew, which every
    job of a sweep does; JAX reports at INFO each accelerator it did not find.
    Importing TensorFlow, Keras and MLflow leaves ~500,000 objects that live as
    long as the process: frozen, they are left out of every collection (each
    job's clear_session runs one that walked them all, 0.5 s).
    """
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "Unable to initialize backend 'tpu'"
    gc.freeze()


def check_backend(name: str) -> None:
    """Refuse a process whose Keras already runs another backend than ``name``.

    Keras' backend is chosen once per process, before Keras is first imported
    (:func:`process_environment`): a process that runs another one (a sweep that
    varies trainer.backend, run by one process) would not compute what the config says.
    """
    keras = sys.modules.get("keras")
    if keras is None:  # not chosen yet
        return
    running = keras.backend.backend()
    if running != name:
        raise ConfigError(
            f"trainer.backend={name} but this process already runs Keras on {running}: a process, and "
            "so a sweep, uses one backend; run each backend in a command of its own"
        )


def use_threads(threads: int | None) -> None:
    """Cap TensorFlow's thread pools, so that parallel jobs do not fight over the cores (on JAX, XLA's
    flags do it: :func:`process_environment`).

    Only possible before TensorFlow's runtime starts: a process that runs several
    jobs (a reused joblib worker) keeps its first job's setting.
    """
    import keras

    threads = threads or int(os.environ.get("OMP_NUM_THREADS") or 0)
    if not threads or keras.backend.backend() != "tensorflow":
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
    import keras

    if folder is None or keras.backend.backend() != "jax":
        return
    import jax

    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"trainer.compile_cache={folder} cannot be created ({e.strerror}): "
            "give a writable folder, or null to leave JAX's own setting"
        ) from e
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # the initializers' small programs too


def compile_options(steps_per_execution: int) -> dict[str, object]:
    """The speed settings of ``model.compile``: the same numbers, less time.

    On TensorFlow, XLA made BN+dropout MLPs 5x slower on CPU; on JAX, XLA is the
    backend: without jit every op runs eagerly (mlp2: 12 s an epoch instead of 0.7).
    """
    import keras

    return {"steps_per_execution": steps_per_execution, "jit_compile": keras.backend.backend() == "jax"}


def library_versions() -> dict[str, str]:
    """What decides a run's numbers besides its code and data: Keras, its backend and the backend's version.

    Part of a run's identity, and its tags.
    """
    import keras

    backend = keras.backend.backend()
    return {
        names.TAG_KERAS_BACKEND: backend,
        names.backend_version_tag(backend): __import__(backend).__version__,
        names.TAG_KERAS_VERSION: keras.__version__,
    }
