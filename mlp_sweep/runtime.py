"""Process-wide settings, made by the command line's entry point (never on import):
quiet TensorFlow, a lighter garbage collector, no secret on the recorded command line."""

import functools
import gc
import logging
import os
import shutil
from pathlib import Path


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up noise out of every job's output; before it loads.

    On a machine with no NVIDIA device its CUDA probe fails with an error line
    (``failed call to cuInit``) that reads as something broken: there, errors
    are silenced too. Where a GPU is present its messages stay.
    """
    no_gpu = not Path("/dev/nvidia0").exists() and shutil.which("nvidia-smi") is None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if no_gpu else "2")


@functools.cache
def settle_process() -> None:
    """Once per process, after TensorFlow has loaded: fewer warnings, a lighter garbage collector.

    TensorFlow warns each time a job traces its step function anew, which every
    job of a sweep does. Importing TensorFlow, Keras and MLflow leaves ~500,000
    objects that live as long as the process: frozen, they are left out of every
    collection (each job's clear_session runs one that walked them all, 0.5 s).
    """
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    gc.freeze()
