#!/usr/bin/env python
"""The worked example of docs/data.md: a dataset of another shape and class count, made offline.

    python scripts/make_digits5.py                  # writes data/digits5/digits5.npz
    python scripts/make_digits5.py --out some/folder

scikit-learn's 8×8 handwritten digits (bundled with it: nothing is downloaded), the
classes 0 to 4 only: 901 images of 64 pixels in 5 classes, scaled from 0..16 to bytes
and saved as one npz archive with the four arrays mlp_sweep reads. The first 700 images
train (and lend 150 to validation), the other 201 test. ``conf/dataset/digits5.yaml``
points at the folder.
"""

import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

N_TRAIN = 700


def make(out: Path) -> Path:
    x, y = load_digits(return_X_y=True)  # 1,797 rows of 64 pixels, values 0..16, classes 0..9
    keep = y < 5
    images = np.round(x[keep] * 255 / 16).astype(np.uint8).reshape(-1, 8, 8)
    labels = y[keep].astype(np.uint8)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "digits5.npz"
    np.savez(path, x_train=images[:N_TRAIN], y_train=labels[:N_TRAIN], x_test=images[N_TRAIN:], y_test=labels[N_TRAIN:])
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/digits5"), help="folder to write (default: %(default)s)")
    print(f"wrote {make(parser.parse_args().out)}")
