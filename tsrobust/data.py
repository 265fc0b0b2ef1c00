"""CIFAR-10 as device-resident tensors, index-permutation batches and on-device augmentation.

Source A (Yang et al.) §5.1 trains the teacher and the students on CIFAR-10; §5.4 adds the usual
augmentation ("RandomCrop, HorizontalFlip, Rotation") and §5.5 Gaussian input noise (σ = 0.1).

The data root is ``$TSROBUST_DATA`` (or the ``root`` argument), else ``~/.cache/tsrobust``. It
holds the standard ``cifar-10-batches-py`` folder; if that is missing, the official
``cifar-10-python.tar.gz`` is downloaded, its md5 checked and the archive extracted atomically.
Every load reports which copy is in use: the official release (each batch file's md5 matches) or
another copy (for example a copy rebuilt from JPEG files), whose results must say so.

Everything stays on one device: the whole split is one float tensor, a batch is a slice of a
random index permutation, and augmentation runs on the batch with randomness drawn only from the
``torch.Generator`` passed in (no DataLoader, no worker processes, no global seeding).
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from tsrobust.io import atomic_write

DATA_ENV = "TSROBUST_DATA"
"""Environment variable naming the data root."""

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
OFFICIAL_BATCH_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
"""md5 of each pickle in the official release: a copy whose files all match is the official one."""

OFFICIAL = "official release (md5 verified)"
NON_OFFICIAL = "non-official copy (md5 differs from the official release)"

SPLIT_SIZES = (50_000, 10_000)
"""Images in the official train and test splits."""
NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

CROP_PADDING = 4
"""Zero padding of the random crop (the usual CIFAR-10 ``RandomCrop(32, padding=4)``)."""
ROTATION_DEG = 15.0
"""Largest rotation of the augmentation (degrees). §5.4 says "Rotation" without an angle; 15° is
our choice."""
NOISE_STD = 0.1
"""σ of the Gaussian input noise of §5.5."""
RESAMPLE_MODES = ("bilinear", "nearest")
"""How :func:`augment` reads a rotated image off the pixel grid."""


class DataError(RuntimeError):
    """The data root holds something that is not a valid CIFAR-10 copy, or a download failed."""


def default_root() -> Path:
    """The data root: ``$TSROBUST_DATA`` if set, else ``~/.cache/tsrobust``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tsrobust"


@dataclass
class CIFAR10:
    """CIFAR-10 as tensors on one device: ``x`` float32 in [0, 1], NCHW; ``y`` int64 in 0..9.

    ``copy`` says which copy the pixels come from (:data:`OFFICIAL` or :data:`NON_OFFICIAL`).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    copy: str

    @property
    def official(self) -> bool:
        return self.copy == OFFICIAL

    @property
    def description(self) -> str:
        """One line for a result's provenance: which copy, and how many images were used."""
        return (
            f"CIFAR-10, {self.copy}; {len(self.x_train)} train / {len(self.x_test)} test images"
        )

    @property
    def notice(self) -> str:
        """The line a chapter shows about its data (Markdown): the description and, for a copy
        that is not the official release, a warning that every number is for that copy."""
        warning = ("" if self.official else
                   " **These are not the official pixels** (e.g. a copy rebuilt from JPEG files): "
                   "every number in this chapter is for that copy.")
        return f"Data: {self.description}.{warning}"

    def __repr__(self):
        return f"CIFAR10({self.description}, device={self.x_train.device})"


def md5_file(path, chunk: int = 1 << 20) -> str:
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _safe_members(tar: tarfile.TarFile, dest: Path):
    """The archive's members, refusing links, devices and paths that leave ``dest``."""
    dest = dest.resolve()
    for m in tar.getmembers():
        target = (dest / m.name).resolve()
        if not (m.isfile() or m.isdir()) or dest not in (target, *target.parents):
            raise DataError(
                f"the archive has an unsafe member {m.name!r}; it is not the CIFAR-10 release"
            )
        yield m


def download_cifar10(root, *, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5,
                     progress: bool = True) -> Path:
    """Download ``cifar-10-python.tar.gz`` into ``root``, check its md5, extract atomically.

    The archive is streamed to a temporary file and hashed on the way; on an md5 mismatch it is
    deleted and :class:`DataError` raised. Extraction goes to a temporary folder that is renamed to
    ``root/cifar-10-batches-py`` only once complete. Returns that folder.
    """
    from tqdm.auto import tqdm

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / BATCHES_DIR
    archive = root / Path(url.rsplit("/", 1)[-1] or "cifar-10-python.tar.gz").name
    h = hashlib.md5()
    try:
        with atomic_write(archive) as tmp:
            with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as out:
                total = int(resp.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc="CIFAR-10 download",
                          disable=not progress) as bar:
                    while block := resp.read(1 << 20):
                        h.update(block)
                        out.write(block)
                        bar.update(len(block))
            if h.hexdigest() != md5:
                raise DataError(
                    f"downloaded {url} has md5 {h.hexdigest()}, expected {md5}: the download is "
                    f"corrupt or not the official archive. Nothing was kept; run again, or put a "
                    f"good copy of {BATCHES_DIR}/ in {root} (or point ${DATA_ENV} at one)."
                )
        work = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
        try:
            try:
                with tarfile.open(archive, "r:gz") as tar:
                    tar.extractall(work, members=list(_safe_members(tar, work)))
            except (tarfile.TarError, OSError, EOFError) as err:
                raise DataError(f"could not extract {archive}: {err}") from err
            if not (work / BATCHES_DIR).is_dir():
                raise DataError(f"{url} has no {BATCHES_DIR}/ folder; it is not CIFAR-10")
            if final.exists():
                raise DataError(f"{final} appeared during the download; delete one of them")
            os.replace(work / BATCHES_DIR, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except urllib.error.URLError as err:
        raise DataError(
            f"could not download {url} ({err.reason}). Without internet, put the "
            f"{BATCHES_DIR}/ folder in {root} or point ${DATA_ENV} at a root that has it."
        ) from err
    finally:
        archive.unlink(missing_ok=True)
    return final


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One ``cifar-10-batches-py`` pickle → (uint8 [n, 3072], int64 [n]), validated."""
    hint = (f"delete {path.parent} and load again (it is downloaded again), or point "
            f"${DATA_ENV} at a good copy")
    if not path.exists():
        raise DataError(f"{path} is missing: the CIFAR-10 copy is incomplete; {hint}")
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError,
            IndexError, MemoryError) as err:
        raise DataError(
            f"{path} is truncated or corrupt ({type(err).__name__}: {err}); {hint}"
        ) from err
    if not isinstance(d, dict):
        raise DataError(f"{path} does not hold a CIFAR-10 batch dict; {hint}")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise DataError(f"{path} lacks the 'data'/'labels' entries of a CIFAR-10 batch; {hint}")
    x = np.asarray(d["data"])
    y = np.asarray(d["labels"], dtype=np.int64)
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != math.prod(IMAGE_SHAPE):
        raise DataError(
            f"{path}: data must be uint8 [n, 3072], got {x.dtype} {list(x.shape)}; {hint}"
        )
    if y.shape != (x.shape[0],):
        raise DataError(f"{path}: {x.shape[0]} images but {y.shape[0]} labels; {hint}")
    if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise DataError(
            f"{path}: labels must lie in 0..{NUM_CLASSES - 1}, found {y.min()}..{y.max()}; {hint}"
        )
    return x, y


def _subset(x: np.ndarray, y: np.ndarray, n, generator, split: str):
    if n is None:
        return x, y
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= len(x):
        raise ValueError(f"n_{split} must be an int in 1..{len(x)} (the {split} split), got {n!r}")
    if generator is None:
        idx = np.arange(n)
    else:
        idx = torch.randperm(len(x), generator=generator)[:n].sort().values.numpy()
    return x[idx], y[idx]


def _to_tensor(x: np.ndarray, y: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(device).view(-1, *IMAGE_SHAPE)
    return xt.to(torch.float32).div_(255.0), torch.from_numpy(y).to(device)


def load_cifar10(root=None, *, download: bool = True, device="cpu", n_train: int | None = None,
                 n_test: int | None = None, generator: torch.Generator | None = None,
                 url: str = CIFAR10_URL, md5: str = CIFAR10_MD5,
                 split_sizes: tuple[int, int] = SPLIT_SIZES,
                 batch_md5: dict | None = None, progress: bool = True) -> CIFAR10:
    """Load CIFAR-10 from ``root/cifar-10-batches-py`` onto ``device``.

    ``root``: the data root (default :func:`default_root`). If the folder is missing and
    ``download`` is true, the official archive is downloaded (``url``, checked against ``md5``).
    ``n_train``/``n_test``: use only that many images of each split — the first ones, or a random
    subset drawn with the CPU ``generator`` if one is given. ``split_sizes``: the expected
    (train, test) sizes of the copy; ``batch_md5``: per-file md5s that identify the official
    copy (default :data:`OFFICIAL_BATCH_MD5`).
    """
    root = default_root() if root is None else Path(root).expanduser()
    folder = root / BATCHES_DIR
    if not folder.is_dir():
        if not download:
            raise DataError(
                f"no CIFAR-10 copy at {folder}; call with download=True, or point ${DATA_ENV} "
                f"(or the root argument) at a folder holding {BATCHES_DIR}/"
            )
        download_cifar10(root, url=url, md5=md5, progress=progress)
    reference = OFFICIAL_BATCH_MD5 if batch_md5 is None else batch_md5
    official = all(
        (folder / name).exists() and md5_file(folder / name) == reference[name]
        for name in (*TRAIN_FILES, TEST_FILE)
    )
    parts = [_read_batch(folder / name) for name in TRAIN_FILES]
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    x_test, y_test = _read_batch(folder / TEST_FILE)
    if (len(x_train), len(x_test)) != tuple(split_sizes):
        raise DataError(
            f"{folder} holds {len(x_train)} train / {len(x_test)} test images, expected "
            f"{split_sizes[0]} / {split_sizes[1]}; the copy is incomplete. Delete {folder} and "
            f"load again, or point ${DATA_ENV} at a full copy."
        )
    x_train, y_train = _subset(x_train, y_train, n_train, generator, "train")
    x_test, y_test = _subset(x_test, y_test, n_test, generator, "test")
    xtr, ytr = _to_tensor(x_train, y_train, device)
    xte, yte = _to_tensor(x_test, y_test, device)
    return CIFAR10(xtr, ytr, xte, yte, OFFICIAL if official else NON_OFFICIAL)


def batches(n: int, batch_size: int, generator: torch.Generator, device="cpu"):
    """Index batches of one epoch: a random permutation of ``range(n)`` cut into ``batch_size``
    slices (the last one may be smaller), drawn on ``device`` with ``generator``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    perm = torch.randperm(n, generator=generator, device=device)
    return iter(perm.split(batch_size))


def augment(x: torch.Tensor, generator: torch.Generator, *, crop_padding: int = CROP_PADDING,
            flip: bool = True, rotation_deg: float = ROTATION_DEG, noise_std: float = 0.0,
            resample: str = "bilinear") -> torch.Tensor:
    """Random crop with zero padding, horizontal flip, rotation and Gaussian noise, on device.

    §5.4's "RandomCrop, HorizontalFlip, Rotation" as one affine resampling per image: a shift of
    up to ``crop_padding`` pixels (zero fill, as a crop of the zero-padded image), a flip with
    probability 1/2, a rotation uniform in ±``rotation_deg`` (zero fill). Then §5.5's noise
    ``x + N(0, noise_std²)`` (not clipped: the noise model is Gaussian in ℝ^d). With no rotation
    the shifts and flips are exact pixel moves. All randomness comes from ``generator``, which
    must live on ``x``'s device.

    ``resample``: how a rotated image is read off the pixel grid. ``"bilinear"`` averages
    neighbouring pixels, a low-pass filter that removes some of the high-frequency patch content
    whose low rank §5.3 studies; ``"nearest"`` (torchvision's default for rotations) moves pixels
    without mixing them.
    """
    if resample not in RESAMPLE_MODES:
        raise ValueError(f"resample must be one of {RESAMPLE_MODES}, got {resample!r}")
    if x.ndim != 4:
        raise ValueError(f"augment expects images [B, C, H, W], got shape {tuple(x.shape)}")
    b, _, h, w = x.shape
    dev = x.device
    out = x
    if crop_padding or flip or rotation_deg:
        shift = torch.randint(-crop_padding, crop_padding + 1, (b, 2), generator=generator,
                              device=dev).to(x.dtype) if crop_padding else x.new_zeros(b, 2)
        sign = (torch.randint(0, 2, (b,), generator=generator, device=dev).to(x.dtype) * 2 - 1
                if flip else x.new_ones(b))
        angle = ((torch.rand(b, generator=generator, device=dev, dtype=x.dtype) * 2 - 1)
                 * math.radians(rotation_deg) if rotation_deg else x.new_zeros(b))
        cos, sin = angle.cos(), angle.sin()
        # Sampling map in normalized coordinates: input(u) = output( F R u + t ), F = diag(±1, 1).
        theta = torch.stack([
            torch.stack([sign * cos, -sign * sin, 2 * shift[:, 0] / w], 1),
            torch.stack([sin, cos, 2 * shift[:, 1] / h], 1),
        ], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode=resample, padding_mode="zeros", align_corners=False)
    if noise_std:
        out = out + noise_std * torch.randn(out.shape, generator=generator, device=dev,
                                            dtype=out.dtype)
    return out


HOLDOUT_PER_CLASS = 500
"""Source C, A.2: "we removed 500 random training samples from each class to be used as a
validation set" (CIFAR-10: 45,000 images left to train on)."""


def holdout_split(y: torch.Tensor, per_class: int = HOLDOUT_PER_CLASS, *,
                  seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A class-balanced validation split of a training set with labels ``y``: indices
    ``(train, held_out)``, both ascending, disjoint and together all of ``range(len(y))``;
    ``held_out`` has ``per_class`` images of every class present in ``y``.

    Deterministic: the images held out of class c are the first ``per_class`` of a random
    permutation of that class's indices, drawn from a CPU generator seeded with ``seed`` (class by
    class, in label order), so the split depends on the labels and the seed only — the same on
    every device and in every run.
    """
    y = torch.as_tensor(y).detach().to("cpu")
    if y.ndim != 1 or y.is_floating_point():
        raise ValueError(f"y must be a 1-D tensor of integer labels, got {y.dtype} "
                         f"{tuple(y.shape)}")
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 0:
        raise ValueError(f"per_class must be an int ≥ 0, got {per_class!r}")
    g = torch.Generator().manual_seed(int(seed))
    held = []
    for c in torch.unique(y).tolist():
        idx = (y == c).nonzero().squeeze(1)
        if len(idx) < per_class:
            raise ValueError(f"class {c} has {len(idx)} images, fewer than the {per_class} to "
                             f"hold out; hold out fewer per class, or load more training images")
        held.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    held_out = torch.cat(held).sort().values if held else torch.zeros(0, dtype=torch.long)
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[held_out] = False
    return keep.nonzero().squeeze(1), held_out
