"""What the tests share: small MNIST-format data they write, configs composed the way
the command line does, a look into a store, the command line in a subprocess, and a
callback the tests hand to that command line (importable with tests/ on PYTHONPATH)."""

import gzip
import importlib.util
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path

import mlflow
import numpy as np
import pytest
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict

from mlp_sweep import names, schema
from mlp_sweep.core.data import NPZ_KEYS, to_idx
from mlp_sweep.names import ENV_DATA_DIR

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = files(schema.CONF_MODULE)  # the configs as the app finds them, installed or not
SERVER_SCRIPT = ROOT / "scripts" / "mlflow_server.py"  # the team server of docs/team.md
REAL_MNIST = Path(os.environ.get(ENV_DATA_DIR, ROOT.parent / "shared" / "data" / "mnist"))

ARTIFACTS = set(names.RUN_ARTIFACTS)
make_cfg = schema.compose  # conf/ with overrides, as ``python -m mlp_sweep`` composes it


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_dataset(folder: Path, arrays: dict[str, np.ndarray], fmt: str = "idx", gz: bool = True) -> Path:
    """Write x_train, y_train, x_test, y_test as the four IDX files (MNIST's names) or as one npz archive."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "npz":
        np.savez(folder / "data.npz", **arrays)
        return folder
    for name, key in NPZ_KEYS.items():
        raw = to_idx(arrays[key])
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder


def write_mnist_like(folder: Path, n_train: int = 3000, n_test: int = 500, gz: bool = True, seed: int = 0) -> Path:
    """Write random 28x28 images with labels as the four MNIST IDX files."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    return write_dataset(folder, arrays, gz=gz)


def blobs(shape: tuple[int, ...], n_classes: int, n_train: int, n_test: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A learnable dataset of any shape: each class is a fixed random uint8 image plus noise."""
    rng = np.random.default_rng(seed)
    prototypes = rng.integers(0, 256, (n_classes, *shape))

    def draw(n):
        y = np.arange(n) % n_classes  # every class present
        noise = rng.normal(0, 40, (n, *shape))
        return np.clip(prototypes[y] + noise, 0, 255).astype(np.uint8), y.astype(np.uint8)

    (x_train, y_train), (x_test, y_test) = draw(n_train), draw(n_test)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def all_runs(store: str) -> list:
    """Every run of every experiment in the store, oldest first (none when it was never created)."""
    mlflow.set_tracking_uri(store)
    return mlflow.search_runs(search_all_experiments=True, output_format="list", order_by=["attributes.start_time ASC"])


def smoke_cfg(data_dir: Path, store_uri: str, *overrides: str) -> DictConfig:
    """The smoke experiment on the tests' own data, into the tests' own store."""
    cfg = make_cfg("experiment=smoke", *overrides)
    with open_dict(cfg):
        cfg.dataset.data_dir = str(data_dir)
        cfg.dataset.verify_checksum = False
        cfg.tracking.uri = store_uri
    return cfg


def children(store: str) -> list:
    """The store's runs that are not a sweep's parent."""
    return [r for r in all_runs(store) if r.data.tags.get(names.TAG_SWEEP) != "parent"]


def parents(store: str) -> list:
    """The store's sweep parent runs, oldest first."""
    return [r for r in all_runs(store) if r.data.tags.get(names.TAG_SWEEP) == "parent"]


def sweep_args(tmp_path: Path, data_dir: Path | str, *overrides: str, folder: str = "multirun") -> list[str]:
    """A smoke sweep's command line on the tests' data, into tmp_path's own store and folder."""
    return [
        "-m",
        "experiment=smoke",
        f"dataset.data_dir={data_dir}",
        "dataset.verify_checksum=false",
        f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"hydra.sweep.dir={tmp_path / folder}",
        *overrides,
    ]


def requires(*modules: str, extra: str) -> pytest.MarkDecorator:
    """Skip where an optional dependency is not installed, naming the extra that brings it."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=f"{', '.join(missing)} not installed: pip install -e '.[{extra}]'")


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m mlp_sweep`` as a user would, in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "mlp_sweep", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def stop(proc: subprocess.Popen) -> None:
    """End a process started in its own session, and all it started (some of Ray's ignore SIGTERM)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # the whole group has ended
        pass
    proc.wait(10)


def wait_for_health(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 180) -> None:
    """Until the server answers; a server that died or never answered fails the tests with its log."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"mlflow server did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@contextmanager
def mlflow_server(root: Path):
    """``scripts/mlflow_server.py`` on a free loopback port; yields its URL."""
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT), "--port", str(port), "--root", str(root / "server"), "--workers", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, proc, root / "server.log", timeout_s=120)
        yield url
    finally:
        stop(proc)
        log.close()


def start_interruptible(args: list[str], cwd, env: dict | None = None) -> subprocess.Popen:
    """The command in a process group of its own, with Ctrl-C's default meaning (a shell may start jobs ignoring it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "mlp_sweep", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_for_a_running_job(store: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r.info.status == "RUNNING" and names.TAG_PARENT in r.data.tags for r in all_runs(store)):
            return
        time.sleep(0.5)
    pytest.fail("no job started in time")


class Seen:
    """What a command printed while a test waited for one of its lines (stdout and stderr apart)."""

    def __init__(self) -> None:
        self.out, self.err = "", ""


def wait_for_line(proc: subprocess.Popen, needle: str, timeout: float = 240) -> Seen:
    """Until the command prints a line holding ``needle`` on stdout or stderr: the event a test acts on.

    Both pipes are read as they fill (a full one would stall the command), straight from their file
    descriptors, so that ``proc.communicate()`` afterwards gets the rest; what was read comes back."""
    out, err = proc.stdout.fileno(), proc.stderr.fileno()
    read, open_fds = {out: b"", err: b""}, [out, err]
    seen, deadline = Seen(), time.monotonic() + timeout
    while open_fds and time.monotonic() < deadline:
        for fd in select.select(open_fds, [], [], 1.0)[0]:
            chunk = os.read(fd, 65536)
            if chunk:
                read[fd] += chunk
            else:  # the pipe closed: the command ended
                open_fds.remove(fd)
        seen.out, seen.err = read[out].decode(errors="replace"), read[err].decode(errors="replace")
        if any(needle in line for line in (seen.out + "\n" + seen.err).splitlines()):
            return seen
    pytest.fail(f"the command never printed {needle!r}:\n{seen.out[-2000:]}\n{seen.err[-3000:]}")


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until something listens on the loopback port, or the process that should has died."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"nothing listens on port {port}")


HOLDER = """
import pathlib, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, lambda *_: pathlib.Path(sys.argv[1]).write_text("SIGTERM"))
while True:
    signal.pause()
"""


class HoldTheStop(Callback):
    """A process the job starts that ignores Ctrl-C and, when a stop ends the command's processes,
    writes ``flag`` and goes on: the stop then waits for it (``interrupt.STOP_WAIT_S``) before it kills
    it, and a test's second Ctrl-C lands in that wait."""

    def __init__(self, flag: str) -> None:
        self.flag, self.holder = flag, None

    def on_job_start(self, config, **kwargs) -> None:
        if self.holder is None:
            # its output elsewhere: the command's pipes close when the command ends, this process or not
            quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
            self.holder = subprocess.Popen([sys.executable, "-c", HOLDER, self.flag], **quiet)


class WipeJobFolder(Callback):
    """Delete each job's output folder as the job ends: a launcher whose nodes share no disk."""

    def on_job_end(self, config, job_return, **kwargs) -> None:
        shutil.rmtree(config.hydra.runtime.output_dir, ignore_errors=True)
