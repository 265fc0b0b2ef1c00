"""tsrobust.data: download (from a tiny archive served on 127.0.0.1), validation, batches and
on-device augmentation. No real CIFAR-10 needed except in one test, which skips without a copy
(and fails under ``TSROBUST_REQUIRE_REFERENCES=1``, as in CI)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import math
import pickle
import tarfile
import threading

import numpy as np
import pytest
import torch

from tsrobust import data as D

TINY = 4  # images per tiny batch file


def _batch(rng, n, offset=0):
    return {
        b"batch_label": b"tiny",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img{offset + i}.png".encode() for i in range(n)],
    }


def write_tiny_copy(folder, seed=0, n=TINY):
    """A folder in the layout of cifar-10-batches-py with ``n`` images per file."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate((*D.TRAIN_FILES, D.TEST_FILE)):
        batches[name] = _batch(rng, n, offset=i * n)
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=2))
    meta = {b"num_cases_per_batch": n, b"label_names": [c.encode() for c in D.CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return batches


def make_archive(path, seed=0):
    """A tiny cifar-10-python.tar.gz; returns (its md5, the batches inside)."""
    src = path.parent / f"src-{path.stem}"
    batches = write_tiny_copy(src / D.BATCHES_DIR, seed)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src / D.BATCHES_DIR, arcname=D.BATCHES_DIR)
    return hashlib.md5(path.read_bytes()).hexdigest(), batches


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path/www``; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield www, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


TINY_SIZES = (5 * TINY, TINY)


def test_default_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path / "x"))
    assert D.default_root() == tmp_path / "x"
    monkeypatch.delenv(D.DATA_ENV)
    assert D.default_root().name == "tsrobust"


def test_download_checks_md5_extracts_and_loads(server, tmp_path):
    www, base = server
    md5, batches = make_archive(www / "cifar-10-python.tar.gz")
    root = tmp_path / "root"
    ds = D.load_cifar10(root, url=f"{base}/cifar-10-python.tar.gz", md5=md5,
                        split_sizes=TINY_SIZES, progress=False)
    # Pixels and labels are those of the pickles, in file order, CHW, scaled to [0, 1].
    want_x = np.concatenate([batches[n][b"data"] for n in D.TRAIN_FILES]).reshape(-1, 3, 32, 32)
    want_y = np.concatenate([batches[n][b"labels"] for n in D.TRAIN_FILES])
    assert ds.x_train.shape == (5 * TINY, 3, 32, 32) and ds.x_train.dtype == torch.float32
    assert torch.allclose(ds.x_train, torch.from_numpy(want_x).float() / 255)
    assert torch.equal(ds.y_train, torch.from_numpy(want_y))
    assert ds.y_train.dtype == torch.int64
    assert torch.equal(ds.y_test, torch.tensor(batches[D.TEST_FILE][b"labels"]))
    # Not the official pixels: the copy says so.
    assert ds.copy == D.NON_OFFICIAL and "non-official" in ds.description
    assert "not the official pixels" in ds.notice
    # The archive and the temporary extraction folder are gone; only the batches remain.
    assert sorted(p.name for p in root.iterdir()) == [D.BATCHES_DIR]
    # A second load reads the folder without downloading (the server is not needed).
    again = D.load_cifar10(root, url=f"{base}/missing.tar.gz", md5="0" * 32,
                           split_sizes=TINY_SIZES)
    assert torch.equal(again.x_test, ds.x_test)


def test_official_copy_is_recognized_by_per_file_md5(tmp_path):
    root = tmp_path / "root"
    write_tiny_copy(root / D.BATCHES_DIR)
    sums = {n: D.md5_file(root / D.BATCHES_DIR / n) for n in (*D.TRAIN_FILES, D.TEST_FILE)}
    ds = D.load_cifar10(root, download=False, split_sizes=TINY_SIZES, batch_md5=sums)
    assert ds.copy == D.OFFICIAL and ds.official
    assert ds.notice == f"Data: {ds.description}."  # no warning for the official release
    sums["test_batch"] = "0" * 32  # one file differs → not the official copy
    ds = D.load_cifar10(root, download=False, split_sizes=TINY_SIZES, batch_md5=sums)
    assert ds.copy == D.NON_OFFICIAL


def test_md5_mismatch_is_a_clear_error_and_leaves_nothing(server, tmp_path):
    www, base = server
    md5, _ = make_archive(www / "cifar-10-python.tar.gz")
    blob = bytearray((www / "cifar-10-python.tar.gz").read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # corrupt one byte in transit
    (www / "cifar-10-python.tar.gz").write_bytes(bytes(blob))
    root = tmp_path / "root"
    with pytest.raises(D.DataError, match=r"md5 .* expected " + md5):
        D.load_cifar10(root, url=f"{base}/cifar-10-python.tar.gz", md5=md5,
                       split_sizes=TINY_SIZES, progress=False)
    assert list(root.iterdir()) == []


def test_unreachable_download_says_what_to_do(tmp_path):
    with pytest.raises(D.DataError, match="could not download"):
        D.load_cifar10(tmp_path, url="http://127.0.0.1:9/cifar-10-python.tar.gz",
                       progress=False)
    with pytest.raises(D.DataError, match="download=True"):
        D.load_cifar10(tmp_path / "empty", download=False)


def test_truncated_pickle_is_a_clear_error(tmp_path):
    folder = tmp_path / D.BATCHES_DIR
    write_tiny_copy(folder)
    blob = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(D.DataError, match=r"data_batch_3 is truncated or corrupt.*delete"):
        D.load_cifar10(tmp_path, download=False, split_sizes=TINY_SIZES)


@pytest.mark.parametrize("breakage, message", [
    (lambda b: b.update({b"labels": [10] * TINY}), "labels must lie in 0..9"),
    (lambda b: b.update({b"data": b[b"data"][:, :100]}), r"uint8 \[n, 3072\]"),
    (lambda b: b.update({b"labels": [0] * (TINY - 1)}), "images but"),
    (lambda b: b.pop(b"labels"), "lacks the 'data'/'labels'"),
])
def test_invalid_batches_are_rejected(tmp_path, breakage, message):
    folder = tmp_path / D.BATCHES_DIR
    batches = write_tiny_copy(folder)
    bad = dict(batches["data_batch_2"])
    breakage(bad)
    (folder / "data_batch_2").write_bytes(pickle.dumps(bad))
    with pytest.raises(D.DataError, match=message):
        D.load_cifar10(tmp_path, download=False, split_sizes=TINY_SIZES)


def test_split_sizes_are_checked(tmp_path):
    write_tiny_copy(tmp_path / D.BATCHES_DIR)
    with pytest.raises(D.DataError, match="expected 50000 / 10000"):
        D.load_cifar10(tmp_path, download=False)  # the official sizes
    (tmp_path / D.BATCHES_DIR / "data_batch_5").unlink()
    with pytest.raises(D.DataError, match="data_batch_5 is missing"):
        D.load_cifar10(tmp_path, download=False, split_sizes=TINY_SIZES)


def test_subsets(tmp_path):
    write_tiny_copy(tmp_path / D.BATCHES_DIR)
    full = D.load_cifar10(tmp_path, download=False, split_sizes=TINY_SIZES)
    first = D.load_cifar10(tmp_path, download=False, split_sizes=TINY_SIZES, n_train=7, n_test=2)
    assert torch.equal(first.x_train, full.x_train[:7]) and torch.equal(first.y_test,
                                                                        full.y_test[:2])
    g = torch.Generator().manual_seed(3)
    rand = D.load_cifar10(tmp_path, download=False, split_sizes=TINY_SIZES, n_train=7,
                          generator=g)
    rows = [int(torch.nonzero((full.x_train == r).flatten(1).all(1))[0]) for r in rand.x_train]
    assert len(set(rows)) == 7 and rows == sorted(rows)
    with pytest.raises(ValueError, match="n_train must be an int in 1..20"):
        D.load_cifar10(tmp_path, download=False, split_sizes=TINY_SIZES, n_train=21)


def test_random_subsets_follow_the_generator(tmp_path):
    """The random subset is the generator's: the same seed draws the same images, another seed
    others, and neither is the first n (what ignoring the generator would give)."""
    write_tiny_copy(tmp_path / D.BATCHES_DIR)
    full = D.load_cifar10(tmp_path, download=False, split_sizes=TINY_SIZES)

    def rows(seed):
        ds = D.load_cifar10(tmp_path, download=False, split_sizes=TINY_SIZES, n_train=7,
                            n_test=2, generator=torch.Generator().manual_seed(seed))
        train = [int(torch.nonzero((full.x_train == r).flatten(1).all(1))[0]) for r in ds.x_train]
        assert torch.equal(ds.y_train, full.y_train[train])  # labels travel with their images
        test = [int(torch.nonzero((full.x_test == r).flatten(1).all(1))[0]) for r in ds.x_test]
        return train, test

    assert rows(3) == rows(3)
    draws = {seed: rows(seed) for seed in range(4)}
    assert len({tuple(train) for train, _ in draws.values()}) == 4
    assert len({tuple(test) for _, test in draws.values()}) > 1
    assert all(train != list(range(7)) for train, _ in draws.values())


def test_batches_are_a_permutation():
    g = torch.Generator().manual_seed(0)
    parts = list(D.batches(10, 4, g))
    assert [len(p) for p in parts] == [4, 4, 2]
    assert sorted(torch.cat(parts).tolist()) == list(range(10))
    again = torch.cat(list(D.batches(10, 4, torch.Generator().manual_seed(0))))
    assert torch.equal(torch.cat(parts), again)


def _images(n=6, seed=0):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_augment_identity_and_generator_only():
    x = _images()
    g = torch.Generator().manual_seed(0)
    same = D.augment(x, g, crop_padding=0, flip=False, rotation_deg=0.0)
    assert torch.equal(same, x)
    state = torch.random.get_rng_state()
    a = D.augment(x, torch.Generator().manual_seed(1), noise_std=0.1)
    b = D.augment(x, torch.Generator().manual_seed(1), noise_std=0.1)
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG was not used


def _shifted(x, dy, dx, p=4):
    """x shifted by (dy, dx) pixels with zero fill: a 32×32 crop of the zero-padded image."""
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    return padded[..., p + dy: p + dy + 32, p + dx: p + dx + 32]


def test_crop_is_an_exact_shift_with_zero_fill():
    x = _images(8)
    out = D.augment(x, torch.Generator().manual_seed(2), flip=False, rotation_deg=0.0)
    shifts = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)]
    seen = set()
    for xi, oi in zip(x, out):
        match = [s for s in shifts if torch.allclose(_shifted(xi, *s), oi, atol=1e-5)]
        assert len(match) == 1, "each output must be one zero-filled shift of its input"
        seen.add(match[0])
    assert len(seen) > 1  # shifts are drawn per image


def test_flip_is_an_exact_horizontal_mirror():
    x = _images(16)
    out = D.augment(x, torch.Generator().manual_seed(4), crop_padding=0, rotation_deg=0.0)
    flipped = [bool(torch.allclose(o, xi.flip(-1), atol=1e-5)) for xi, o in zip(x, out)]
    kept = [bool(torch.allclose(o, xi, atol=1e-5)) for xi, o in zip(x, out)]
    assert all(f != k for f, k in zip(flipped, kept)) and 0 < sum(flipped) < 16


def test_rotation_keeps_a_centred_disc_and_turns_a_bar():
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    r2 = (yy - 15.5) ** 2 + (xx - 15.5) ** 2
    blob = torch.exp(-r2 / 40).expand(4, 3, 32, 32).contiguous()
    out = D.augment(blob, torch.Generator().manual_seed(5), crop_padding=0, flip=False,
                    rotation_deg=30.0)
    assert (out - blob).abs().max() < 0.02  # a radially symmetric image does not change
    bar = ((yy - 15.5).abs() < 1.5).float().expand(64, 3, 32, 32).contiguous()
    out = D.augment(bar, torch.Generator().manual_seed(6), crop_padding=0, flip=False,
                    rotation_deg=15.0)
    # A horizontal bar turned by a random θ ∈ ±15° no longer lies on its rows.
    changed = (out - bar).abs().flatten(1).sum(1)
    assert (changed > 1.0).float().mean() > 0.9
    assert out.min() >= 0 and out.max() <= 1 + 1e-6


def test_noise_has_the_requested_std():
    x = torch.full((64, 3, 32, 32), 0.5)
    out = D.augment(x, torch.Generator().manual_seed(7), crop_padding=0, flip=False,
                    rotation_deg=0.0, noise_std=D.NOISE_STD)
    noise = (out - x).flatten()
    assert abs(float(noise.mean())) < 3e-3
    assert math.isclose(float(noise.std()), D.NOISE_STD, rel_tol=0.02)


def test_real_copy_if_present(cifar_root):
    ds = D.load_cifar10(cifar_root, download=False, n_train=50, n_test=20)
    assert ds.x_train.shape == (50, 3, 32, 32) and ds.x_test.shape == (20, 3, 32, 32)
    assert 0 <= float(ds.x_train.min()) and float(ds.x_train.max()) <= 1
    assert ds.copy in (D.OFFICIAL, D.NON_OFFICIAL)


def test_nearest_rotation_moves_pixels_without_mixing_them():
    """Nearest resampling only copies pixel values (or zero fill); bilinear creates new ones."""
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, 2, (16, 3, 32, 32)).float()  # binary images: mixing shows as 0 < v < 1
    kw = dict(crop_padding=0, flip=False, rotation_deg=30.0)
    near = D.augment(x, torch.Generator().manual_seed(3), resample="nearest", **kw)
    bil = D.augment(x, g, resample="bilinear", **kw)
    assert set(near.unique().tolist()) <= {0.0, 1.0}
    assert ((bil > 0.01) & (bil < 0.99)).float().mean() > 0.1
    with pytest.raises(ValueError, match="resample must be one of"):
        D.augment(x, g, resample="bicubic")


def test_holdout_split_is_class_balanced_disjoint_and_deterministic():
    y = torch.randint(0, 10, (3000,), generator=torch.Generator().manual_seed(0))
    train, held = D.holdout_split(y, 50, seed=1)
    assert torch.bincount(y[held], minlength=10).tolist() == [50] * 10
    assert len(set(train.tolist()) & set(held.tolist())) == 0
    assert sorted(train.tolist() + held.tolist()) == list(range(len(y)))
    assert torch.equal(train, train.sort().values) and torch.equal(held, held.sort().values)
    # the same labels and seed give the same split; another seed another one
    again = D.holdout_split(y.clone(), 50, seed=1)
    assert torch.equal(again[1], held) and torch.equal(again[0], train)
    assert not torch.equal(D.holdout_split(y, 50, seed=2)[1], held)
    assert D.HOLDOUT_PER_CLASS == 500  # source C, A.2
    with pytest.raises(ValueError, match="fewer than"):
        D.holdout_split(y, 400)
    with pytest.raises(ValueError, match="per_class"):
        D.holdout_split(y, -1)
