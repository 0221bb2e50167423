"""``gan-face``: replace each face with a synthetic one from pixveil's own GAN.

After the GAN + differential-privacy de-identification framework (project the
face into the latent space of a generator, add Laplace noise there, generate,
swap the result back) and the end-to-end GAN privacy method (customised DCGAN
trained on faces, background kept).  For each detected face:

1. align: a similarity transform maps the model's canonical five landmarks
   onto the detected ones (CenterFace), or the canonical face box onto the
   detected box when landmarks are missing, implausible or the face is small;
2. invert: the aligned 64x64 crop goes through the encoder (fast path),
   optionally refined for ``refine_steps`` steps (quality path);
3. privatise: the latent Laplace mechanism (:mod:`pixveil.privacy.latent`)
   clips the code, adds Laplace noise of scale 1/ε per coordinate, maps each
   coordinate back to N(0, 1) and projects onto the generator's typical shell;
4. generate and swap: the new face is warped into place with the inverse
   transform, given the region's mean colour and contrast (a Lab colour
   transfer), and blended with Poisson (seamless) cloning whose boundary is
   the original pixels just outside the region, so lighting and colour follow
   the surroundings.  Only pixels inside the face region change.

Privacy guarantee
-----------------
ε·d metric privacy of the face's latent code with respect to the L1 distance
(and the (ε·2·c·d)-DP it implies over the clipped set); see
:mod:`pixveil.privacy.latent` for the exact statement and what it does not
cover (hair, ears and background outside the region, missed faces, position,
pose, the colour taken from the surroundings and the region's mean colour and
contrast).  With ``--region head`` or ``person`` the face is synthesised the
same way and the rest of the region (hair, ears, neck, body) is filled with a
solid colour, so nothing of it is kept.  ``epsilon=0`` draws a
random face independent of the person; ``epsilon=inf`` adds no noise and warns
with :class:`~pixveil.errors.PrivacyLeakWarning`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from pixveil._onnx import check_device
from pixveil.errors import ModelError, PrivacyParameterError
from pixveil.gan.cond_geometry import (
    context_dilation,
    crop_mask,
    crop_transform,
    heatmaps,
    to_crop,
    warp_crop,
)
from pixveil.gan.cond_prior import context_features
from pixveil.gan.cond_runtime import CondFaceGAN, is_conditional
from pixveil.gan.runtime import FaceGAN, default_model_dir, load_face_gan
from pixveil.privacy.latent import LatentLaplace
from pixveil.protect.base import MethodParams, ProtectionMethod, box_mask, register_method
from pixveil.regions import DERIVED_KINDS, inner_face
from pixveil.types import Region

__all__ = [
    "DCGAN64",
    "CondView",
    "GanFace",
    "GanFaceParams",
    "context_gain",
    "face_transform",
    "load_gan_model",
    "match_lighting",
    "swap_face",
    "work_transform",
]

#: Chosen by measurement (docs/BENCHMARKS.md §5): on held-out LFW people dlib's
#: rank-1 grows with ε (bench/bench_gan_face.py, 1,495 probes: 1.3 % at 0,
#: 1.8 % at 0.25, 2.9 % at 0.5, 4.6 % at 1; chance 1 %); 0.25 is the largest
#: measured value within 2x chance, for 0.004 of SSIM.
DEFAULT_EPSILON = 0.25
#: Faces are processed at a scale where the aligned crop is at most this wide
#: (the generated face has 64 px of detail; Poisson blending cost grows with area).
WORK_SIZE = 160
#: Below this box side the five landmarks are too noisy: align on the box.
MIN_LANDMARK_FACE = 24
#: Head and person regions: the colour of everything around the synthetic face.
SURROUND_COLOR = (0, 0, 0)
#: ``model`` value that selects the shipped unconditional 64-px DCGAN.
DCGAN64 = "dcgan64"
#: How much context the conditional generator reads around the grown region
#: (its crop is 1.5x the face box, rotated by up to 40 degrees).
COND_CONTEXT = 2.0


def load_gan_model(model: str = "", *, device: str = "cpu") -> FaceGAN | CondFaceGAN:
    """The face model ``gan-face`` uses, loaded once per process.

    ``""``: the default export (``PIXVEIL_GAN_MODEL`` or the shipped one; the
    conditional generator where the folder has one); ``"dcgan64"``: the shipped
    unconditional 64-px DCGAN; any other value: a folder written by ``pixveil
    gan export`` (either kind).
    """
    check_device(device)
    return _load_gan_model(model, device)


@functools.lru_cache(maxsize=8)
def _load_gan_model(model: str, device: str) -> FaceGAN | CondFaceGAN:
    if model == DCGAN64:
        return load_face_gan(str(default_model_dir()), device=device)
    folder = Path(model) if model else default_model_dir()
    if is_conditional(folder):
        return CondFaceGAN(folder, device=device)
    return load_face_gan(model or None, device=device)


@dataclass(frozen=True, kw_only=True)
class GanFaceParams(MethodParams):
    """Parameters of ``gan-face``.

    Attributes
    ----------
    epsilon : float
        Metric-privacy parameter of the latent Laplace mechanism (per unit of
        L1 distance between latent codes), ``>= 0``.  Smaller is more private;
        0 = a random face; ``inf`` = no noise (warns).
    clip : float
        Coordinate bound of the latent code before noise.
    refine_steps : int
        Quality-path refinement steps (0 = encoder only, the fast path).
    blend : str
        ``"auto"`` (the default: ``"model"`` for the conditional generator,
        ``"seamless"`` for the 64-px DCGAN), ``"model"`` (the generator's own
        pixels pasted as they are: it drew the seam itself; conditional only),
        ``"seamless"`` (Poisson cloning; with the conditional generator its
        boundary is the surroundings only and no pixel of the region is read; more
        natural, but a CNN trained on its outputs re-identifies more people than
        with ``"model"``, docs/BENCHMARKS.md §16; with the DCGAN the face first gets
        the region's colour and contrast) or
        ``"feather"`` (alpha blend after that colour transfer from the region).
    model : str
        ``""`` = the shipped default (the conditional 128-px generator),
        ``"dcgan64"`` = the shipped unconditional 64-px DCGAN, or the folder of
        an exported model (``pixveil gan export``).
    swap_threshold : float
        Detections scored below this are not given a synthetic face: the
        pipeline protects them with the default method (blur) instead, so a
        false detection (a headrest, a tail-light) does not sprout a face.
        Real faces scored lower are still protected.
    truncation : float or None
        Conditional generator only: the scale of the released residual code
        before it is turned into a latent (post-processing, no privacy cost).
        Lower gives more typical faces, higher more varied ones; None = the
        model card's value.
    pose : str
        Conditional generator only: ``"landmarks"`` (the five detected
        landmarks steer the new face's pose and proportions) or ``"box"`` (no
        landmarks: the face is drawn from the surroundings and the box alone,
        so the original face's geometry does not reach the output either).
    device : str
        Where the GAN's networks run: one of :data:`pixveil._onnx.DEVICES`
        (``"cpu"``, ``"auto"``, ``"cuda"``...); an accelerator this ONNX
        Runtime lacks falls back to the CPU.  Not a privacy parameter: it
        changes the speed, not the mechanism (the noise is drawn on the CPU).
    """

    margin: float = 1.1
    epsilon: float = DEFAULT_EPSILON
    clip: float = 3.0
    refine_steps: int = 0
    blend: str = "auto"
    model: str = ""
    swap_threshold: float = 0.5
    pose: str = "landmarks"
    truncation: float | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        super().__post_init__()
        eps = self.epsilon
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or math.isnan(eps) or eps < 0:
            raise PrivacyParameterError(f"epsilon must be a real number >= 0, got {eps!r}")
        if isinstance(self.refine_steps, bool) or not isinstance(self.refine_steps, int):
            raise ValueError(f"refine_steps must be an int, got {self.refine_steps!r}")
        if not 0 <= self.refine_steps <= 500:
            raise ValueError(f"refine_steps must be in [0, 500], got {self.refine_steps}")
        if isinstance(self.swap_threshold, bool) or not (0.0 <= float(self.swap_threshold) <= 1.0):
            raise ValueError(f"swap_threshold must be in [0, 1], got {self.swap_threshold!r}")
        if self.blend not in ("auto", "model", "seamless", "feather"):
            raise ValueError(
                f"blend must be 'auto', 'model', 'seamless' or 'feather', got {self.blend!r}"
            )
        tr = self.truncation
        if tr is not None and (
            isinstance(tr, bool) or not isinstance(tr, numbers.Real) or not 0 <= tr <= 2
        ):
            raise ValueError(f"truncation must be in [0, 2] or None, got {tr!r}")
        if self.pose not in ("landmarks", "box"):
            raise ValueError(f"pose must be 'landmarks' or 'box', got {self.pose!r}")
        check_device(self.device)


def face_transform(region: Region, gan: FaceGAN, margin: float) -> np.ndarray:
    """2x3 similarity transform from the model's crop to the (local) face of ``region``.

    ``region`` is the grown region handed to :meth:`ProtectionMethod.replace`;
    its box is shrunk by ``margin`` back to the detected box.
    """
    det = region.scaled(1.0 / margin)
    bx0, by0, bx1, by1 = det.box
    cb = gan.card.box
    s_box = ((bx1 - bx0) / (cb[2] - cb[0]) + (by1 - by0) / (cb[3] - cb[1])) / 2
    by_box = np.array(
        [
            [s_box, 0.0, (bx0 + bx1) / 2 - s_box * (cb[0] + cb[2]) / 2],
            [0.0, s_box, (by0 + by1) / 2 - s_box * (cb[1] + cb[3]) / 2],
        ],
        np.float64,
    )
    lm = region.landmarks
    if lm is None or len(lm) != 5 or min(bx1 - bx0, by1 - by0) < MIN_LANDMARK_FACE:
        return by_box
    m, _ = cv2.estimateAffinePartial2D(gan.card.landmarks, lm.astype(np.float32), method=cv2.LMEDS)
    if m is None:
        return by_box
    s = math.hypot(m[0, 0], m[1, 0])
    if not (0.6 * s_box <= s <= 1.6 * s_box):
        return by_box
    return np.asarray(m, np.float64)


def work_transform(
    patch: np.ndarray, region: Region, gan: FaceGAN, margin: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """:func:`face_transform` at gan-face's working scale.

    A face whose aligned crop would be wider than :data:`WORK_SIZE` pixels is
    processed on the patch shrunk by ``k < 1`` (area averaging).

    Returns
    -------
    m : ndarray of shape (2, 3), float64
        Model crop -> ``work`` pixels.
    work : ndarray of shape (h', w', 3), uint8
        ``patch``, or its shrunk copy (sides at least 8), C-contiguous.
    k : float
        The scale of ``work`` relative to ``patch``, in ``(0, 1]``.
    """
    m = face_transform(region, gan, margin)
    h, w = patch.shape[:2]
    crop_px = math.hypot(m[0, 0], m[1, 0]) * gan.size
    k = min(1.0, WORK_SIZE / max(crop_px, 1e-6))
    work = patch
    if k < 1.0:
        ww, wh = max(8, round(w * k)), max(8, round(h * k))
        work = cv2.resize(patch, (ww, wh), interpolation=cv2.INTER_AREA)
        sx, sy = ww / w, wh / h
        m = np.array([[sx, 0, 0], [0, sy, 0]]) @ np.vstack([m, [0, 0, 1]])
    return m, np.ascontiguousarray(work), k


def _scaled_region(region: Region, k: float) -> Region:
    x0, y0, x1, y1 = region.box
    return dataclasses.replace(region, box=(x0 * k, y0 * k, x1 * k, y1 * k))


def _heavy_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of large ``sigma``, computed at a reduced scale (same look, a fraction of the cost)."""
    h, w = img.shape[:2]
    f = max(1.0, sigma / 4.0)
    if f <= 1.5 or min(h, w) / f < 4:
        return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    sw, sh = max(2, round(w / f)), max(2, round(h / f))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / f, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def context_poisson(patch: np.ndarray, warped: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson-paste ``warped`` under ``mask`` into ``patch``, reading no pixel under the mask.

    The region is blanked first and filled by inpainting from its surroundings
    (OpenCV's ``seamlessClone`` takes part of its guidance from the destination
    under the mask: the original region would leak into the result through it,
    and a blank or the new face itself would keep a hard seam).  The solution
    inside the (slightly dilated) mask then follows the gradients of ``warped``
    and meets the pixels just *outside* the region, which stay visible in the
    output anyway: the surroundings set the new face's colour and light.  Odd
    geometry that OpenCV refuses falls back to ``warped`` as it is.
    """
    h, w = patch.shape[:2]
    if mask.sum() < 16:
        return warped
    mask8 = mask.astype(np.uint8) * 255
    blank = patch.copy()
    blank[mask] = 0
    if mask.all():
        return warped  # nothing around the region to take the light from
    base = cv2.inpaint(blank, mask8, 3, cv2.INPAINT_TELEA)
    pad = 3
    src_p = cv2.copyMakeBorder(warped, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    dst = cv2.copyMakeBorder(base, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    mk = cv2.copyMakeBorder(mask8, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    mk = cv2.dilate(mk, np.ones((3, 3), np.uint8))  # every masked pixel is interior
    ys, xs = np.nonzero(mk)
    center = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    try:
        out = cv2.seamlessClone(src_p, dst, mk, center, cv2.NORMAL_CLONE)
    except cv2.error:
        return warped
    return np.ascontiguousarray(out[pad : pad + h, pad : pad + w])


def match_lighting(face: np.ndarray, patch: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Give ``face`` the mean colour and contrast that ``patch`` has under ``mask``.

    A colour transfer in Lab (per-channel mean and standard deviation, the
    gain clipped to [0.2, 1.2]): a face in a dark, flat car window comes out
    dark and flat too, instead of a studio-lit face pasted in.  The target
    statistics are six numbers about the original region's lighting (not
    covered by the latent guarantee, as documented).
    """
    lab_f = cv2.cvtColor(face, cv2.COLOR_RGB2LAB).astype(np.float32)
    lab_p = cv2.cvtColor(patch, cv2.COLOR_RGB2LAB).astype(np.float32)
    mf, sf = lab_f[mask].mean(0), lab_f[mask].std(0) + 1e-3
    mp, sp = lab_p[mask].mean(0), lab_p[mask].std(0)
    lab = (lab_f - mf) * np.clip(sp / sf, 0.2, 1.2) + mp
    return cv2.cvtColor(np.clip(np.rint(lab), 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def swap_face(
    patch: np.ndarray,
    face: np.ndarray,
    m: np.ndarray,
    mask: np.ndarray,
    *,
    blend: str = "auto",
) -> np.ndarray:
    """Put the generated ``face`` (S, S, 3) into ``patch`` with crop->patch transform ``m``.

    ``mask`` (bool, patch-sized) is where the result will be used.  The face
    first gets the region's colour and contrast (:func:`match_lighting`).  With
    ``"seamless"`` the whole mask is the Poisson solution guided by the new
    face's gradients, with the original pixels just *outside* the mask as the
    boundary (the surroundings set colour and lighting); with ``"feather"`` the
    face is alpha-blended into a heavy blur of the patch.  In
    both cases no pixel under ``mask`` keeps its original value.
    """
    h, w = patch.shape[:2]
    size = face.shape[0]
    scale = math.hypot(m[0, 0], m[1, 0]) * size  # face crop width in patch pixels
    warped = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    # Where the region reaches past the generated crop (forehead, chin of a
    # grown region) there is no face to show: a heavy blur of the region fills
    # in, with a soft seam, instead of a mirrored copy of the face.
    cover = cv2.warpAffine(
        np.ones((size, size), np.float32), m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0
    )
    soft = max(1.0, 0.04 * scale)
    inside = cv2.erode(
        (cover > 0.99).astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, round(soft))
    )
    cover_f = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), soft)[..., None]
    base = _heavy_blur(patch, max(1.0, 0.25 * scale))
    if mask.any():
        on_face = mask & (inside > 0)
        warped = match_lighting(warped, patch, on_face if on_face.sum() >= 16 else mask)
    src = np.clip(np.rint(cover_f * warped + (1.0 - cover_f) * base), 0, 255).astype(np.uint8)
    mask8 = mask.astype(np.uint8) * 255
    if blend == "seamless" and mask.sum() >= 16:
        return context_poisson(patch, src, mask)
    if not mask.any():
        return base
    inner = cv2.erode(mask8, np.ones((3, 3), np.uint8), iterations=max(1, round(0.04 * scale)))
    alpha = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), max(1.0, 0.03 * scale))
    alpha = alpha[..., None]
    out = alpha * src.astype(np.float32) + (1.0 - alpha) * base.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


@register_method("gan-face")
class GanFace(ProtectionMethod):
    __doc__ = __doc__
    Params = GanFaceParams
    summary: ClassVar[str] = "each face replaced by a synthetic one from pixveil's own GAN"
    guarantee: ClassVar[str] = (
        "ε·d metric privacy of the face's latent code (L1); ε = 0: a random face"
    )
    randomized = True
    kinds: ClassVar[frozenset[str] | None] = frozenset({"face"})

    def __init__(self, params: MethodParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        p = self.params
        assert isinstance(p, GanFaceParams)
        self.gan = load_gan_model(p.model, device=p.device)
        # validates epsilon/clip now and warns once for epsilon=inf
        self._mech = LatentLaplace(epsilon=p.epsilon, clip=p.clip, dim=self.gan.nz)
        if p.epsilon > 0 and not self.gan.has_encoder:
            raise ModelError(
                f"the face GAN in {self.gan.folder} has no encoder: only epsilon=0 (random faces) works"
            )
        conditional = isinstance(self.gan, CondFaceGAN)
        if p.blend == "model" and not conditional:
            raise ValueError("blend='model' needs the conditional generator (it draws the seam)")
        self._blend = p.blend if p.blend != "auto" else ("model" if conditional else "seamless")
        # the conditional generator reads the surroundings of the region
        self.context = COND_CONTEXT if conditional else 1.0

    def handles(self, region: Region) -> bool:
        """Faces detected with a score of at least ``swap_threshold``; every head and person region."""
        p = self.params
        assert isinstance(p, GanFaceParams)
        if region.kind in DERIVED_KINDS:
            return True
        return region.kind == "face" and region.score >= p.swap_threshold

    def replace(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        if region.kind in DERIVED_KINDS:
            return self._replace_around_face(patch, region, rng=rng)
        return self._swap(patch, region, rng=rng)

    def _replace_around_face(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        """A head or person region: a synthetic face where the face was, the rest filled.

        The rest of the region (hair, ears, neck, body) gets the solid
        :data:`SURROUND_COLOR`: nothing of it is kept.  A region with no face
        (a person found by the people detector alone) or whose face scored below
        ``swap_threshold`` is filled entirely.
        """
        p = self.params
        assert isinstance(p, GanFaceParams)
        out = np.empty_like(patch)
        out[...] = np.asarray(SURROUND_COLOR, dtype=np.uint8)
        face = inner_face(region)
        if face is None or face.score < p.swap_threshold:
            return out
        grown = face.scaled(p.margin)
        swapped = self._swap(patch, grown, rng=rng)
        inside = box_mask(grown.box, patch.shape[:2], "ellipse")
        out[inside] = swapped[inside]
        return out

    def _swap(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        """A face region (grown by ``margin``): the synthetic face swapped in."""
        if isinstance(self.gan, CondFaceGAN):
            return self._swap_conditional(patch, region, rng=rng)
        p = self.params
        assert isinstance(p, GanFaceParams)
        gan = self.gan
        h, w = patch.shape[:2]
        m, work, k = work_transform(patch, region, gan, p.margin)
        aligned = cv2.warpAffine(
            work,
            m,
            (gan.size, gan.size),
            flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT,
        )[None]
        if p.epsilon == 0:
            # a random face: the original face is never even encoded
            z_priv = self._mech.privatize(np.zeros((1, gan.nz), np.float32), random_state=rng)
        else:
            z = gan.encode(aligned)
            if p.refine_steps:
                z = gan.refine(z, aligned, steps=p.refine_steps)
            z_priv = self._mech.privatize(z, random_state=rng)
        face = gan.generate(z_priv)[0]
        shape = p.shape if p.shape != "auto" else "ellipse"
        mask = box_mask(
            (region if k == 1.0 else _scaled_region(region, k)).box, work.shape[:2], shape
        )
        out = swap_face(work, face, m, mask, blend=self._blend)
        if out.shape[:2] != (h, w):
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
        return out

    def _swap_conditional(
        self, patch: np.ndarray, region: Region, *, rng: np.random.Generator | None
    ) -> np.ndarray:
        """The conditional generator: the face redrawn from its surroundings and a latent.

        ``patch`` holds the region and its context (:attr:`context`).  The crop
        of :mod:`pixveil.gan.cond_geometry` is cut around the detected box
        (rolled by the eye line), the region's mask carried into it, and the
        generator redraws everything under the mask from the rest of the crop,
        the landmark heat maps and the latent: the encoder's projection of the
        face through the latent Laplace mechanism, or a random code at ε = 0
        (then the face is never read at all).
        """
        view = self.conditional_view(patch, region)
        return self.conditional_render(patch, view, self.conditional_code(view, rng))

    def conditional_view(self, patch: np.ndarray, region: Region) -> CondView:
        """The generator's inputs for ``region`` (grown, in ``patch`` coordinates)."""
        p = self.params
        gan = self.gan
        assert isinstance(p, GanFaceParams) and isinstance(gan, CondFaceGAN)
        h, w = patch.shape[:2]
        det = region.scaled(1.0 / p.margin)
        bx0, by0, bx1, by1 = det.box
        lm = region.landmarks if p.pose == "landmarks" else None
        use_lm = lm is not None and len(lm) == 5 and min(bx1 - bx0, by1 - by0) >= MIN_LANDMARK_FACE
        m = crop_transform(det.box, lm if use_lm else None, res=gan.res, context=gan.card.context)
        shape = p.shape if p.shape != "auto" else "ellipse"
        region_mask = box_mask(region.box, (h, w), shape)
        # The generator's view is cut from a copy whose region is blanked, and its
        # mask covers every crop pixel the interpolation may have mixed with the
        # region: no face pixel reaches the generator, the prior or the gain.
        blank = patch.copy()
        blank[region_mask] = 0
        crop = warp_crop(blank, m, gan.res)
        cmask = crop_mask(m, region_mask, res=gan.res, dilate=context_dilation(m))
        face_crop = warp_crop(patch, m, gan.res) if p.epsilon > 0 else None
        heat = heatmaps(
            to_crop(m, lm) if use_lm and lm is not None else None,
            res=gan.res,
            sigma=gan.card.sigma,
        )
        gain = context_gain(crop, cmask, gan.min_context_std)
        if gain != 1.0:
            crop = np.clip(np.rint(crop.astype(np.float32) * gain), 0, 255).astype(np.uint8)
        # the context prior: the latent's mean and spread given what stays visible
        feats = context_features(crop, cmask)
        return CondView(m, crop, region_mask, cmask, heat, feats, gain, face_crop)

    def conditional_code(self, view: CondView, rng: np.random.Generator | None) -> np.ndarray:
        """The released residual code ``u`` (1, nz) of the face in ``view``."""
        gan = self.gan
        assert isinstance(gan, CondFaceGAN)
        if self.params.epsilon == 0:  # type: ignore[attr-defined]
            # a random face: the original face is never even encoded
            return self._mech.privatize(np.zeros((1, gan.nz), np.float32), random_state=rng)
        assert view.face_crop is not None
        code = gan.prior.whiten(gan.encode(view.face_crop, view.cmask), view.features)
        return self._mech.privatize(code, random_state=rng)

    def conditional_render(self, patch: np.ndarray, view: CondView, u: np.ndarray) -> np.ndarray:
        """The patch with the face drawn from residual code ``u`` (only the region is used)."""
        gan = self.gan
        assert isinstance(gan, CondFaceGAN)
        h, w = patch.shape[:2]
        p = self.params
        assert isinstance(p, GanFaceParams)
        tr = gan.truncation if p.truncation is None else float(p.truncation)
        z = gan.prior.unwhiten(u * tr, view.features)
        redrawn = gan.generate(view.crop, view.cmask, view.heat, z)
        if view.gain != 1.0:
            redrawn = np.clip(np.rint(redrawn / view.gain), 0, 255).astype(np.uint8)
        if self._blend in ("model", "seamless"):
            warped = cv2.warpAffine(
                redrawn, view.m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
            )
            if self._blend == "model":
                return warped
            # Poisson with the surroundings as the boundary: no pixel of the region is read
            return context_poisson(patch, warped, view.region_mask)
        # feathered blending as for the DCGAN (its colour transfer reads the region)
        return swap_face(patch, redrawn, view.m, view.region_mask, blend=self._blend)


@dataclass(frozen=True)
class CondView:
    """What the conditional generator sees of one region (see :meth:`GanFace.conditional_view`)."""

    m: np.ndarray  # crop -> patch transform (2, 3)
    crop: np.ndarray  # (R, R, 3) uint8: the context (region blanked), after the gain
    region_mask: np.ndarray  # (h, w) bool, in patch pixels
    cmask: np.ndarray  # (R, R) float32 in {0, 1}
    heat: np.ndarray  # (5, R, R) float32
    features: np.ndarray  # the context prior's features
    gain: float  # brightness gain applied to the crop (and undone on the output)
    face_crop: np.ndarray | None = None  # the crop with the face, for the encoder (ε > 0 only)


def context_gain(
    crop: np.ndarray, cmask: np.ndarray, min_std: float, typical_std: float = 52.0
) -> float:
    """Brightness gain that lifts a very flat, dark context into the training range.

    The grey-level standard deviation of the context (pixels outside the mask)
    is compared with ``min_std`` (the 2nd percentile of the training crops): a
    flatter scene (a face behind a car window, a night shot) is multiplied up
    to the ``typical_std`` of training crops (their median; at most 8x, and
    never past a context mean of 230) before the generator sees it, and the
    generated pixels are divided by the same gain, so the new face keeps the
    scene's darkness.  Only context pixels are read.
    """
    ctx = cmask < 0.5
    if ctx.sum() < 64:
        return 1.0
    grey = crop.astype(np.float32).mean(axis=2)[ctx]
    std = float(grey.std())
    if std >= min_std:
        return 1.0
    gain = min(8.0, typical_std / max(std, 1e-3), 230.0 / max(float(grey.mean()), 1.0))
    return float(max(1.0, gain))
