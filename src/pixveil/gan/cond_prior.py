"""The context prior of the conditional generator: p(z | what stays visible around the face).

A random latent drawn from N(0, 1) ignores the scene: the generator then paints
a face whose skin tone and lighting need not match the neck, ears and light
around it, because in training the tone came through the encoder's code.  The
context prior fixes that without ever reading the face: a ridge regression
from a coarse view of the *masked* crop (the context only, 16x16 per channel,
plus the mask) to the encoder's codes on the training faces, and a Gaussian of
the residuals around it::

    z = A · f(context) + b + L · u,      u ~ N(0, I)

``u`` is the only free part.  At ε = 0 it is drawn at random (the face is not
read); at ε > 0 it is the face's whitened residual ``L⁻¹(E(face) − A·f − b)``
after the latent Laplace mechanism.  ``f`` depends on the pixels outside the
region only, which every face method leaves visible anyway.

Fitting needs torch (the encoder); using the prior needs numpy and OpenCV.
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np

__all__ = ["FEATURE_SIDE", "TRUNCATION", "ContextPrior", "context_features", "fit_prior"]

#: Side of the coarse context view the prior reads.
FEATURE_SIDE = 16
#: Scale of the residual code ``u`` before it is coloured (below 1: the truncation
#: trick, more typical faces for less variety).  Applied after the privacy
#: mechanism, so it is post-processing.  1.0 by measurement (docs/BENCHMARKS.md
#: §16): at 0.7 the new face was a more predictable function of the context, and
#: the informed attacker re-identified more (AT&T whole photo 55 % against 45 %)
#: for almost the same realism (FID-like 50.2 against 51.0).
TRUNCATION = 1.0


def context_features(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Features (1024,) float32 of the context: the masked crop and the mask, area-averaged.

    ``crop`` (R, R, 3) uint8 or float in [-1, 1] (channels last), ``mask`` (R, R) in {0, 1}.
    Pixels under the mask are zeroed before anything is computed.
    """
    x = np.asarray(crop, np.float32)
    if np.asarray(crop).dtype == np.uint8:
        x = x / 127.5 - 1.0
    m = np.asarray(mask, np.float32)
    x = x * (1.0 - m)[..., None]
    small = cv2.resize(x, (FEATURE_SIDE, FEATURE_SIDE), interpolation=cv2.INTER_AREA)
    ms = cv2.resize(m, (FEATURE_SIDE, FEATURE_SIDE), interpolation=cv2.INTER_AREA)
    return np.concatenate([small.transpose(2, 0, 1).ravel(), ms.ravel()]).astype(np.float32)


class ContextPrior:
    """The fitted prior: ``mean(features)`` and the residual factor ``L``."""

    def __init__(self, f_mean: np.ndarray, a: np.ndarray, b: np.ndarray, chol: np.ndarray) -> None:
        self.f_mean = np.asarray(f_mean, np.float64)
        self.a = np.asarray(a, np.float64)  # (F, nz)
        self.b = np.asarray(b, np.float64)  # (nz,)
        self.chol = np.asarray(chol, np.float64)  # (nz, nz), lower
        self.nz = len(self.b)

    def mean(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, np.float64) - self.f_mean) @ self.a + self.b

    def whiten(self, z: np.ndarray, features: np.ndarray) -> np.ndarray:
        """The residual code ``u = L⁻¹(z − mean)`` (1, nz)."""
        r = np.asarray(z, np.float64).reshape(-1) - self.mean(features)
        return np.linalg.solve(self.chol, r)[None].astype(np.float32)

    def unwhiten(self, u: np.ndarray, features: np.ndarray) -> np.ndarray:
        """The latent ``mean + L u`` (1, nz) for a residual code ``u``."""
        z = self.mean(features) + self.chol @ np.asarray(u, np.float64).reshape(-1)
        return z[None].astype(np.float32)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, f_mean=self.f_mean, a=self.a, b=self.b, chol=self.chol)
        return buf.getvalue()

    @classmethod
    def load(cls, path: Path | str) -> ContextPrior:
        return cls.from_bytes(Path(path).read_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> ContextPrior:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(z["f_mean"], z["a"], z["b"], z["chol"])


def fit_prior(
    run: Path | str, pack: Path | str, *, samples: int = 20000, ridge: float = 10.0, seed: int = 0
) -> tuple[ContextPrior, dict[str, float]]:
    """Fit the prior of run folder ``run`` on ``samples`` augmented crops of ``pack``.

    Returns the prior and fit statistics (variance of the codes explained by the
    context, on a held-back fifth of the samples).
    """
    import torch

    from pixveil.gan.cond_models import CondEncoder
    from pixveil.gan.cond_train import Batcher, load_weights

    e = CondEncoder().eval()
    load_weights(e, Path(run) / "e.pt")
    data = Batcher(Path(pack), torch.device("cpu"), seed)
    feats: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    with torch.no_grad():
        for _ in range(0, samples, 100):
            x, m, _h = data.sample(100)
            codes.append(e(x, m)[0].numpy())
            xn, mn = x.permute(0, 2, 3, 1).numpy(), m[:, 0].numpy()
            feats.extend(context_features(xi, mi) for xi, mi in zip(xn, mn, strict=True))
    f = np.stack(feats).astype(np.float64)
    z = np.concatenate(codes).astype(np.float64)
    n_fit = len(f) * 4 // 5
    f_mean = f[:n_fit].mean(0)
    b = z[:n_fit].mean(0)
    fc = f[:n_fit] - f_mean
    a = np.linalg.solve(fc.T @ fc + ridge * np.eye(f.shape[1]), fc.T @ (z[:n_fit] - b))
    pred = (f[n_fit:] - f_mean) @ a + b
    res_fit = z[:n_fit] - (fc @ a + b)
    cov = np.cov(res_fit, rowvar=False) + 1e-6 * np.eye(z.shape[1])
    chol = np.linalg.cholesky(cov)
    total = ((z[n_fit:] - b) ** 2).sum()
    explained = 1.0 - float(((z[n_fit:] - pred) ** 2).sum() / total)
    return ContextPrior(f_mean, a, b, chol), {
        "samples": float(len(f)),
        "explained_variance_held_back": explained,
    }
