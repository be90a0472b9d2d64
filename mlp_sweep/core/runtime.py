"""Process-wide settings, never made on import: Keras' backend, quiet TensorFlow, a lighter
garbage collector, the backend's threads and compile cache, and the speed settings of a model.

None of it changes a run's numbers, so none of it is in a run's identity. Keras is
imported inside the functions that need it: the entry point calls the first ones
before Keras may load.
"""

import functools
import gc
import importlib.util
import logging
import os
import shutil
import sys
from pathlib import Path

from mlp_sweep import names
from mlp_sweep.errors import ConfigError


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up noise out of every job's output; before it loads.

    On a machine with no NVIDIA device its CUDA probe fails with an error line
    (``failed call to cuInit``) that reads as something broken: there, errors
    are silenced too. Where a GPU is present its messages stay.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_gpu() else "3")


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
    job of a sweep does; JAX reports at INFO each accelerator it did not find. Importing TensorFlow, Keras and MLflow leaves ~500,000
    objects that live as long as the process: frozen, they are left out of every
    collection (each job's clear_session runs one that walked them all, 0.5 s).
    """
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # "Unable to initialize backend 'tpu'"
    gc.freeze()


def use_backend(name: str) -> None:
    """Choose Keras' backend: possible once per process, before Keras is first imported.

    A process that already runs Keras on another backend (a sweep that varies
    trainer.backend, run by one process) is refused: its results would not be
    what the config says.
    """
    keras = sys.modules.get("keras")
    if keras is None:
        os.environ["KERAS_BACKEND"] = name
        return
    running = keras.backend.backend()
    if running != name:
        raise ConfigError(f"trainer.backend={name} but this process already runs Keras on {running}: a process, and "
                          "so a sweep, uses one backend; run each backend in a command of its own")


def use_threads(threads: int | None) -> None:
    """Cap the backend's threads, so that parallel jobs do not fight over the cores.

    Only possible before the backend's runtime starts (TensorFlow's thread pools,
    XLA's CPU client on JAX): a process that runs several jobs (a reused joblib
    worker) keeps its first job's setting.
    """
    import keras

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
    import keras

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
    return {names.TAG_KERAS_BACKEND: backend, names.backend_version_tag(backend): __import__(backend).__version__,
            names.TAG_KERAS_VERSION: keras.__version__}
