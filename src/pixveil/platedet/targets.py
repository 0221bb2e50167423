"""Training targets of the plate network (NumPy; the layout is in :mod:`pixveil.platedet.model`).

For each plate (a quadrilateral) the target heatmap holds an elliptical Gaussian around
the plate centre, on the stride-4 grid (standard deviations a sixth of the plate's box
size, at least 0.7 cells), 1 exactly at the centre cell.  Regression targets are given
at every cell where that Gaussian is at least 0.5 (weighted by its value); a cell
claimed by two plates goes to the one whose Gaussian is larger there.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIZE_UNIT", "STRIDE", "make_targets"]

STRIDE = 4
SIZE_UNIT = 32.0
_MIN_SIGMA = 0.7
_REG_FLOOR = 0.5


def make_targets(
    quads: np.ndarray, height: int, width: int, *, stride: int = STRIDE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmap, regression and weight maps for one image.

    Parameters
    ----------
    quads : ndarray of shape (N, 4, 2), float
        Plate corners in image pixels (clockwise from the plate's top-left).
    height, width : int
        Image size; multiples of ``stride``.
    stride : int

    Returns
    -------
    heat : ndarray of shape (H/stride, W/stride), float32 in [0, 1]
    reg : ndarray of shape (10, H/stride, W/stride), float32
        ``log(w / 32), log(h / 32)``, then the corners relative to the cell centre
        (x / box width, y / box height).
    weight : ndarray of shape (H/stride, W/stride), float32 in [0, 1]
        Where (and how much) the regression counts.
    """
    if height % stride or width % stride:
        raise ValueError(f"height and width must be multiples of {stride}, got {height}x{width}")
    gh, gw = height // stride, width // stride
    heat = np.zeros((gh, gw), np.float32)
    reg = np.zeros((10, gh, gw), np.float32)
    weight = np.zeros((gh, gw), np.float32)
    q = np.asarray(quads, np.float32).reshape(-1, 4, 2)
    for quad in q:
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        bw, bh = float(x1 - x0), float(y1 - y0)
        if bw < 2 or bh < 2:
            continue
        c = quad.mean(axis=0) / stride - 0.5  # centre in grid coordinates (cell centres at ints)
        sx = max(_MIN_SIGMA, bw / stride / 6)
        sy = max(_MIN_SIGMA, bh / stride / 6)
        ci, cj = round(float(c[1])), round(float(c[0]))
        ri, rj = int(np.ceil(3 * sy)), int(np.ceil(3 * sx))
        i0, i1 = max(0, ci - ri), min(gh, ci + ri + 1)
        j0, j1 = max(0, cj - rj), min(gw, cj + rj + 1)
        if i1 <= i0 or j1 <= j0:
            continue
        ii = np.arange(i0, i1, dtype=np.float32)[:, None]
        jj = np.arange(j0, j1, dtype=np.float32)[None, :]
        # Centred on the cell that holds the centre, so the peak is exactly 1 there.
        g = np.exp(-((jj - cj) ** 2) / (2 * sx * sx) - ((ii - ci) ** 2) / (2 * sy * sy))
        sub = heat[i0:i1, j0:j1]
        np.maximum(sub, g, out=sub)
        claim = (g >= _REG_FLOOR) & (g > weight[i0:i1, j0:j1])
        if not claim.any():
            continue
        weight[i0:i1, j0:j1][claim] = g[claim]
        px = (jj + 0.5) * stride  # cell centres in image pixels
        py = (ii + 0.5) * stride
        vals = np.empty((10, *g.shape), np.float32)
        vals[0] = np.log(bw / SIZE_UNIT)
        vals[1] = np.log(bh / SIZE_UNIT)
        for k in range(4):
            vals[2 + 2 * k] = (quad[k, 0] - px) / bw
            vals[3 + 2 * k] = (quad[k, 1] - py) / bh
        reg[:, i0:i1, j0:j1][:, claim] = vals[:, claim]
    return heat, reg, weight
