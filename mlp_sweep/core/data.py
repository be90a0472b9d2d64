"""MNIST: find it, read it, prove it is MNIST, split it.

Sources, in order: ``dataset.data_dir``, ``$MLP_SWEEP_DATA_DIR``, Keras' own
download. A folder may hold the four original IDX files (gzipped or not) or
Keras' ``mnist.npz``. Whatever the source, the checksum is the SHA-256 of
the uncompressed IDX bytes, so one copy of MNIST has one checksum however
it was wrapped.
"""

import functools
import gzip
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlp_sweep.errors import DataError
from mlp_sweep.names import ENV_DATA_DIR

N_CLASSES = 10

# name -> SHA-256 of the uncompressed IDX bytes of the published MNIST.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
NPZ_KEYS = {
    "train-images-idx3-ubyte": "x_train",
    "train-labels-idx1-ubyte": "y_train",
    "t10k-images-idx3-ubyte": "x_test",
    "t10k-labels-idx1-ubyte": "y_test",
}
IDX_UBYTE = 0x08  # the only element type MNIST uses


@dataclass(frozen=True)
class Splits:
    """Flattened float32 images in [0, 1] and int labels, plus the source's checksum."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sha256: str


# --- IDX format -------------------------------------------------------------


def parse_idx(raw: bytes, name: str) -> np.ndarray:
    """Decode IDX bytes (magic 0x0000TTNN, NN big-endian dims, then data)."""
    if len(raw) < 4 or raw[0:2] != b"\0\0" or raw[2] != IDX_UBYTE or raw[3] not in (1, 3):
        raise DataError(
            f"{name}: wrong magic number {raw[:4].hex() or 'none'}; not an MNIST IDX file "
            "(expected 00000801 or 00000803)"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated header ({len(raw)} bytes); the file is damaged, fetch it again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"{name}: {len(raw)} bytes but its header {shape} needs {expected}; "
            "the file is truncated or damaged, fetch it again"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def to_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes: the inverse of :func:`parse_idx`."""
    header = bytes([0, 0, IDX_UBYTE, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _read_idx_file(folder: Path, name: str) -> np.ndarray:
    for path, opener in ((folder / f"{name}.gz", gzip.open), (folder / name, open)):
        if path.exists():
            try:
                with opener(path, "rb") as f:
                    return parse_idx(f.read(), path.name)
            except (OSError, EOFError) as e:  # a gzip stream cut short
                raise DataError(f"{path}: cannot be read ({e}); the file is damaged, fetch it again") from e
    raise DataError(f"{folder}: {name}[.gz] is missing")


# --- sources ----------------------------------------------------------------


def read_folder(folder: Path) -> dict[str, np.ndarray]:
    """Read the four MNIST arrays from IDX files or mnist.npz in ``folder``.

    Cached by the folder's files and their modification times, so the jobs of a
    sweep that share a process read and verify the data once.
    """
    if not folder.is_dir():
        raise DataError(
            f"data folder {folder} does not exist: point dataset.data_dir or ${ENV_DATA_DIR} at a folder "
            "with the MNIST IDX files or mnist.npz"
        )
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir() if p.is_file()))
    return _read_folder_cached(folder, stamp)


@functools.lru_cache(maxsize=2)
def _read_folder_cached(folder: Path, stamp: tuple) -> dict[str, np.ndarray]:
    has_idx = any((folder / f"{n}{ext}").exists() for n in MNIST_SHA256 for ext in ("", ".gz"))
    npz = folder / "mnist.npz"
    if not has_idx and npz.exists():
        try:
            with np.load(npz) as f:
                missing = [k for k in NPZ_KEYS.values() if k not in f]
                if missing:
                    raise DataError(f"{npz}: lacks arrays {missing}; expected Keras' mnist.npz")
                return {name: f[key] for name, key in NPZ_KEYS.items()}
        except DataError:
            raise
        except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as e:  # not an npz archive at all
            raise DataError(
                f"{npz}: not an npz archive ({e}); put Keras' mnist.npz or the four MNIST IDX files in the folder"
            ) from e
    if not has_idx:
        raise DataError(
            f"data folder {folder} holds neither the MNIST IDX files ({', '.join(MNIST_SHA256)}, gzipped or not) "
            "nor mnist.npz"
        )
    return {name: _read_idx_file(folder, name) for name in MNIST_SHA256}


def download_with_keras() -> dict[str, np.ndarray]:
    """Keras' own download and cache (~/.keras/datasets), for users with internet."""
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as e:
        raise DataError(
            f"no data folder given and Keras could not download MNIST ({e}); "
            f"set ${ENV_DATA_DIR} or dataset.data_dir to a local copy"
        ) from e
    return dict(zip(MNIST_SHA256, (x_train, y_train, x_test, y_test), strict=False))


def resolve_data_dir(data_dir: str | None) -> Path | None:
    """The folder to read: config first, then the environment; None means download."""
    chosen = data_dir or os.environ.get(ENV_DATA_DIR)
    return Path(chosen).expanduser().resolve() if chosen else None


# --- checks and splits -------------------------------------------------------


def checksum(arrays: dict[str, np.ndarray], verify: bool) -> str:
    """One SHA-256 for the dataset; with ``verify``, refuse anything but MNIST."""
    digests = {name: hashlib.sha256(to_idx(arrays[name])).hexdigest() for name in MNIST_SHA256}
    if verify:
        for name, digest in digests.items():
            if digest != MNIST_SHA256[name]:
                raise DataError(
                    f"{name}: SHA-256 {digest[:12]}… is not MNIST's {MNIST_SHA256[name][:12]}…; the file is corrupt "
                    "or another dataset. Fetch MNIST again, or set dataset.verify_checksum=false to train on data of "
                    "your own."
                )
    return hashlib.sha256("".join(digests.values()).encode()).hexdigest()


def check_shapes(arrays: dict[str, np.ndarray]) -> None:
    """Images and labels must pair up and images must be 2-D."""
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(f"{split}: images must be N×H×W and labels N, got {images.shape} and {labels.shape}")
        if len(images) != len(labels):
            raise DataError(
                f"{split}: {len(images)} images but {len(labels)} labels; "
                "the image and label files do not belong together"
            )
        if labels.size and labels.max() >= N_CLASSES:
            raise DataError(f"{split}: label {labels.max()} is outside 0..{N_CLASSES - 1}")


def split(
    arrays: dict[str, np.ndarray], val_size: int, split_seed: int, train_size: int | None, test_size: int | None
) -> tuple[np.ndarray, ...]:
    """Hold validation out of train by a permutation that ignores the run's seed."""
    x, y = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"]
    xt, yt = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"]
    n_train = len(x) - val_size if train_size is None else train_size
    if val_size + n_train > len(x) or n_train <= 0:
        raise DataError(
            f"dataset.val_size={val_size} + train size {n_train} exceeds the {len(x)} training images; "
            "lower dataset.val_size or dataset.train_size"
        )
    if test_size is not None and test_size > len(xt):
        raise DataError(f"dataset.test_size={test_size} exceeds the {len(xt)} test images; lower it or set it to null")
    order = np.random.default_rng(split_seed).permutation(len(x))
    val, train = order[:val_size], order[val_size : val_size + n_train]
    return x[train], y[train], x[val], y[val], xt[:test_size], yt[:test_size]


def _flat(images: np.ndarray) -> np.ndarray:
    return (images.reshape(len(images), -1) / np.float32(255)).astype(np.float32)


def load(
    data_dir: str | None = None,
    *,
    val_size: int = 10_000,
    split_seed: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    verify_checksum: bool = True,
) -> Splits:
    """Load, verify and split MNIST; every error comes before any training.

    All but the folder by keyword: two sizes swapped by position would pass unnoticed.
    """
    folder = resolve_data_dir(data_dir)
    arrays = read_folder(folder) if folder else download_with_keras()
    check_shapes(arrays)
    sha = checksum(arrays, verify_checksum)
    x_tr, y_tr, x_va, y_va, x_te, y_te = split(arrays, val_size, split_seed, train_size, test_size)
    i32 = np.int32
    return Splits(_flat(x_tr), y_tr.astype(i32), _flat(x_va), y_va.astype(i32), _flat(x_te), y_te.astype(i32), sha)
