"""The data: find it, read it, prove it is what it claims to be, split it.

Sources, in order: ``dataset.data_dir``, ``$MLP_SWEEP_DATA_DIR``, Keras' own
download (for a published dataset: MNIST, Fashion-MNIST). A folder holds the
four arrays as IDX files (MNIST's own names, gzipped or not) or as one npz
archive (``x_train``, ``y_train``, ``x_test``, ``y_test``). Images may be
N×H×W (or more dimensions) or N×D features; the model's input width and its
number of classes come from what is read here. Whatever the source, the
checksum is the SHA-256 of the arrays' IDX encoding, so one copy of MNIST has
one checksum however it was wrapped.
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

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
NPZ_KEYS = dict(zip(FILES, ("x_train", "y_train", "x_test", "y_test"), strict=True))
# Published datasets (``dataset.source``) -> SHA-256 of each file's uncompressed IDX bytes, from the real files.
PUBLISHED_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    # Zalando's Fashion-MNIST, as Debian's dataset-fashion-mnist package ships it.
    "fashion_mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
# IDX element types: code -> big-endian numpy dtype.
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass(frozen=True)
class Splits:
    """Flattened float32 inputs and int labels 0..n_classes-1, plus the source's checksum."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sha256: str
    n_classes: int

    @property
    def input_dim(self) -> int:
        return self.x_train.shape[1]


# --- IDX format -------------------------------------------------------------


def parse_idx(raw: bytes, name: str) -> np.ndarray:
    """Decode IDX bytes (magic 0x0000TTNN: element type TT, NN big-endian dims, then data)."""
    if len(raw) < 4 or raw[0:2] != b"\0\0" or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise DataError(
            f"{name}: wrong magic number {raw[:4].hex() or 'none'}; not an IDX file "
            "(expected 0000TTNN with element type TT one of 08, 09, 0b, 0c, 0d, 0e and NN dimensions)"
        )
    dtype, ndim = np.dtype(IDX_TYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated header ({len(raw)} bytes); the file is damaged, fetch it again")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{name}: {len(raw)} bytes but its header {shape} needs {expected}; "
            "the file is truncated or damaged, fetch it again"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def idx_dtype(array: np.ndarray) -> np.dtype:
    """The IDX element type that holds ``array`` exactly: its own where IDX has it, else the narrowest that fits."""
    if array.dtype.kind == "f":
        return np.dtype(">f8" if array.dtype.itemsize > 4 else ">f4")
    if array.dtype.kind not in "uib":
        raise DataError(f"arrays of type {array.dtype} have no IDX encoding: store numbers (integers or floats)")
    low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
    for code in (">u1", ">i1", ">i2", ">i4"):
        info = np.iinfo(code)
        if info.min <= low and high <= info.max:
            return np.dtype(code)
    raise DataError(f"values {low}..{high} do not fit IDX's 32-bit integers: rescale them or store floats")


def to_idx(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes: the inverse of :func:`parse_idx` (uint8 stays uint8, so MNIST is byte-exact)."""
    dtype = idx_dtype(array)
    code = next(c for c, t in IDX_TYPES.items() if np.dtype(t) == dtype)
    header = bytes([0, 0, code, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def _idx_path(folder: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in ``folder``, where one is there."""
    return next((p for p in (folder / f"{name}.gz", folder / name) if p.exists()), None)


def _read_idx_file(folder: Path, name: str) -> np.ndarray:
    path = _idx_path(folder, name)
    if path is None:
        raise DataError(f"{folder}: {name}[.gz] is missing")
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            return parse_idx(f.read(), path.name)
    except (OSError, EOFError) as e:  # a gzip stream cut short
        raise DataError(f"{path}: cannot be read ({e}); the file is damaged, fetch it again") from e


# --- sources ----------------------------------------------------------------


def read_folder(folder: Path) -> dict[str, np.ndarray]:
    """Read the four arrays from IDX files or one npz archive in ``folder``.

    Cached by the folder's files and their modification times, so the jobs of a
    sweep that share a process read and verify the data once.
    """
    if not folder.is_dir():
        raise DataError(
            f"data folder {folder} does not exist: point dataset.data_dir or ${ENV_DATA_DIR} at a folder "
            "with the four IDX files or an npz archive (docs/data.md)"
        )
    stamp = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in folder.iterdir() if p.is_file()))
    return _read_folder_cached(folder, stamp)


@functools.lru_cache(maxsize=2)
def _read_folder_cached(folder: Path, stamp: tuple) -> dict[str, np.ndarray]:
    if any(_idx_path(folder, name) for name in FILES):
        return {name: _read_idx_file(folder, name) for name in FILES}
    archives = sorted(folder.glob("*.npz"))
    if len(archives) != 1:
        found = f"{len(archives)} npz archives ({', '.join(p.name for p in archives)})" if archives else "neither"
        raise DataError(
            f"data folder {folder} holds {found}: it needs the four IDX files ({', '.join(FILES)}, gzipped or not) "
            "or one npz archive with x_train, y_train, x_test, y_test"
        )
    return read_npz(archives[0])


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The four arrays of an npz archive (Keras' mnist.npz, or one's own ``np.savez``)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in NPZ_KEYS.values() if k not in f]
            if missing:
                raise DataError(f"{path}: lacks arrays {missing}; it needs x_train, y_train, x_test, y_test")
            return {name: f[key] for name, key in NPZ_KEYS.items()}
    except DataError:
        raise
    except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as e:  # not an npz archive at all
        raise DataError(f"{path}: not an npz archive of arrays ({e}); write it with numpy.savez") from e


def download_with_keras(source: str | None) -> dict[str, np.ndarray]:
    """Keras' own download and cache (~/.keras/datasets) of a published dataset, for users with internet."""
    if source is None:
        raise DataError(
            f"no data folder: set dataset.data_dir or ${ENV_DATA_DIR} to the folder with your data "
            "(only published datasets, dataset.source=mnist or fashion_mnist, can be downloaded)"
        )
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, source).load_data()
    except Exception as e:
        raise DataError(
            f"no data folder given and Keras could not download {TITLES[source]} ({e}); "
            f"set ${ENV_DATA_DIR} or dataset.data_dir to a local copy"
        ) from e
    return dict(zip(FILES, (x_train, y_train, x_test, y_test), strict=True))


def resolve_data_dir(data_dir: str | None) -> Path | None:
    """The folder to read: config first, then the environment; None means download."""
    chosen = data_dir or os.environ.get(ENV_DATA_DIR)
    return Path(chosen).expanduser().resolve() if chosen else None


# --- checks and splits -------------------------------------------------------


def checksum(arrays: dict[str, np.ndarray], source: str | None = None) -> str:
    """One SHA-256 for the dataset; given a published ``source``, refuse anything but its files."""
    digests = {name: hashlib.sha256(to_idx(arrays[name])).hexdigest() for name in FILES}
    for name, digest in digests.items():
        expected = PUBLISHED_SHA256[source][name] if source else digest
        if digest != expected:
            raise DataError(
                f"{name}: SHA-256 {digest[:12]}… is not {TITLES[source]}'s {expected[:12]}…; the file is corrupt "
                f"or another dataset. Fetch {TITLES[source]} again, or set dataset.verify_checksum=false to train on "
                "data of your own."
            )
    return hashlib.sha256("".join(digests.values()).encode()).hexdigest()


def n_classes(arrays: dict[str, np.ndarray]) -> int:
    """The number of classes, C: the training labels must be the integers 0..C-1, each present,
    and the test labels among them. Refused otherwise, naming the fix."""
    shapes = {name: arrays[name].shape for name in FILES}
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if images.ndim < 2 or labels.ndim != 1:
            raise DataError(
                f"{split}: images must be N×H×W (or N×D features) and labels N, got {images.shape} and {labels.shape}"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{split}: {len(images)} images but {len(labels)} labels; the image and label files do not belong "
                "together"
            )
        if labels.dtype.kind not in "ui":
            raise DataError(f"{split}: labels are {labels.dtype}, not integers: store them as integers 0..C-1")
    if shapes[FILES[0]][1:] != shapes[FILES[2]][1:]:
        raise DataError(
            f"train images are {'×'.join(map(str, shapes[FILES[0]][1:]))} but test images "
            f"{'×'.join(map(str, shapes[FILES[2]][1:]))}: train and test must have the same width"
        )
    y, y_test = arrays[FILES[1]], arrays[FILES[3]]
    if len(y) == 0 or y.min() < 0:
        raise DataError(f"train: labels must be the integers 0..C-1, got {'none' if len(y) == 0 else y.min()}")
    counts = np.bincount(y)
    if (counts == 0).any():
        raise DataError(
            f"train: class {np.flatnonzero(counts == 0)[0]} of 0..{len(counts) - 1} has no sample: labels must be the "
            "integers 0..C-1 with every class present (renumber them)"
        )
    outside = sorted(set(np.unique(y_test).tolist()) - set(range(len(counts))))
    if outside:
        raise DataError(f"test: labels {outside[:5]} are not among the training classes 0..{len(counts) - 1}")
    return len(counts)


def split(
    arrays: dict[str, np.ndarray],
    val_size: int,
    split_seed: int,
    train_size: int | None,
    test_size: int | None,
    stratify: bool = False,
) -> tuple[np.ndarray, ...]:
    """Hold validation out of train by a permutation that ignores the run's seed; by class, if ``stratify``."""
    x, y = arrays[FILES[0]], arrays[FILES[1]]
    xt, yt = arrays[FILES[2]], arrays[FILES[3]]
    n_train = len(x) - val_size if train_size is None else train_size
    if train_size is None and n_train <= 0:
        raise DataError(
            f"dataset.val_size={val_size} leaves none of the {len(x)} training samples to train on; "
            "lower dataset.val_size"
        )
    if val_size + n_train > len(x):
        raise DataError(
            f"dataset.val_size={val_size} + dataset.train_size={n_train} exceeds the {len(x)} training samples; "
            "lower dataset.val_size or dataset.train_size"
        )
    if test_size is not None and test_size > len(xt):
        raise DataError(f"dataset.test_size={test_size} exceeds the {len(xt)} test images; lower it or set it to null")
    if stratify:
        from sklearn.model_selection import train_test_split

        try:
            train, val = train_test_split(
                np.arange(len(x)), train_size=n_train, test_size=val_size, random_state=split_seed, stratify=y
            )
        except ValueError as e:  # a class too small to appear on both sides
            raise DataError(f"dataset.stratify=true cannot split: {e}; raise dataset.val_size or turn it off") from e
    else:
        order = np.random.default_rng(split_seed).permutation(len(x))
        val, train = order[:val_size], order[val_size : val_size + n_train]
    return x[train], y[train], x[val], y[val], xt[:test_size], yt[:test_size]


def _flat(images: np.ndarray) -> np.ndarray:
    """N×… -> N×D float32; bytes (images) scaled to [0, 1], any other numbers kept as they are."""
    flat = images.reshape(len(images), -1).astype(np.float32)
    return flat / np.float32(255) if images.dtype == np.uint8 else flat


def load(
    data_dir: str | None = None,
    *,
    source: str | None = "mnist",
    val_size: int = 10_000,
    split_seed: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    verify_checksum: bool = True,
    stratify: bool = False,
) -> Splits:
    """Load, verify and split a dataset; every error comes before any training.

    All but the folder by keyword: two sizes swapped by position would pass unnoticed.
    """
    folder = resolve_data_dir(data_dir)
    arrays = read_folder(folder) if folder else download_with_keras(source)
    classes = n_classes(arrays)
    sha = checksum(arrays, source if verify_checksum else None)
    x_tr, y_tr, x_va, y_va, x_te, y_te = split(arrays, val_size, split_seed, train_size, test_size, stratify)
    i32 = np.int32
    return Splits(
        _flat(x_tr), y_tr.astype(i32), _flat(x_va), y_va.astype(i32), _flat(x_te), y_te.astype(i32), sha, classes
    )


def from_config(d) -> Splits:
    """The dataset a config's ``dataset`` group describes (:class:`mlp_sweep.schema.DatasetConf`), loaded."""
    return load(
        d.data_dir,
        source=d.source,
        val_size=d.val_size,
        split_seed=d.split_seed,
        train_size=d.train_size,
        test_size=d.test_size,
        verify_checksum=d.verify_checksum,
        stratify=d.stratify,
    )
