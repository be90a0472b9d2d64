"""Process-wide settings, made by the command line's entry point (never on import):
Keras' backend, quiet TensorFlow, a lighter garbage collector."""

import functools
import importlib.util
import gc
import logging
import os
import shutil
import sys
from pathlib import Path

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
