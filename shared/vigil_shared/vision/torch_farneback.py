"""Farneback's dense optical flow in torch, batched: OpenCV's algorithm on the model's device.

The motion stream's default flow is OpenCV's ``calcOpticalFlowFarneback``, one frame pair at a
time on one CPU core. On a CUDA host that takes every frame off the device and bounds a process
at a few dozen pairs a second per core, however fast the GPU. This module computes the same
estimate (Farneback 2003, as OpenCV implements it: ``modules/video/src/optflowgf.cpp``, box
window, no initial flow) as a handful of batched tensor ops, so every pair of a batch runs at
once where the frames already are. It follows OpenCV step by step, because a model fitted with
one and scored with the other must see the same motion (``tests/unit/test_torch_farneback.py``
holds it to OpenCV's flow on real frames):

- a pyramid of ``pyr_scale`` steps down to 32 pixels (at most ``levels`` steps), each level the
  frame Gaussian-blurred (OpenCV's kernel for the level's scale) and resized bilinearly;
- per level and frame, the polynomial expansion: a quadratic fitted around each pixel under a
  Gaussian applicability of ``poly_n`` pixels either side (``poly_sigma``), as separable
  correlations (``expand``: a frame's own, so a stream of frames needs it once a frame, where
  OpenCV expands both frames of every pair);
- per level, ``iterations`` updates: the second frame's expansion sampled where the flow so far
  carries each pixel, the per-pixel normal equations averaged over a ``winsize`` box, and the
  2x2 system solved for the new flow; matrices near the border are attenuated as OpenCV does.

On a CPU, OpenCV's C++ is faster and the motion stream keeps using it there. The two agree to
about 1e-6 pixels on real footage (on Ped2's frames, 2e-3 at the most). Where two frames are
bit for bit equal (made-up still images, never a camera's), a pixel within 6 of the border
whose flow is +-1e-9 may fall on either side of OpenCV's "sample outside the frame" test, and
the two can part there by up to a pixel; nothing else differs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional

from vigil_shared.vision.motion import FlowParams

MIN_SIZE = 32  # OpenCV's: no pyramid level narrower or lower than this
_BORDER = (0.14, 0.14, 0.4472, 0.4472, 0.4472)  # OpenCV's attenuation of the outer 5 pixels
_SMALL_GAUSSIAN_3 = (0.25, 0.5, 0.25)  # OpenCV's 3-tap kernel when sigma is not positive


def farneback(
    previous: torch.Tensor, current: torch.Tensor, params: FlowParams | None = None
) -> torch.Tensor:
    """(N, H, W) grey frames (0-255) to the (N, H, W, 2) displacement in pixels (x, y) that
    carries each pixel of ``previous`` to ``current``: ``cv2.calcOpticalFlowFarneback`` with
    ``params``' Farneback fields and flags 0, pair by pair, within float rounding (the frames'
    size is theirs: ``params.height``/``width`` are the caller's to resize to)."""
    if previous.shape != current.shape or previous.dim() != 3:
        raise ValueError(f"frame pairs must be (N, H, W) alike: {previous.shape}, {current.shape}")
    levels = expand(torch.cat([previous, current]), params)  # both expanded in one pass
    count = previous.shape[0]
    return flow_between(
        [level[:count] for level in levels], [level[count:] for level in levels], params
    )


def expand(frames: torch.Tensor, params: FlowParams | None = None) -> list[torch.Tensor]:
    """(N, H, W) grey frames to all that the flow needs of each: per pyramid level, coarsest
    first, its (N, 5, h, w) polynomial expansion. A frame's expansion depends on that frame
    alone, so a stream of frames needs it once a frame (a third of the flow's work), where
    OpenCV's call expands both frames of every pair."""
    p = params if params is not None else FlowParams()
    if frames.dim() != 3:
        raise ValueError(f"frames must be (N, H, W): {tuple(frames.shape)}")
    batch = frames.float().unsqueeze(1)
    height, width = frames.shape[-2:]
    kernels = _poly_kernels(p.poly_n, p.poly_sigma, frames.device)
    levels = []
    for k in range(_steps(height, width, p.pyr_scale, p.levels), -1, -1):
        scale = p.pyr_scale**k
        size = (_cv_round(height * scale), _cv_round(width * scale))
        levels.append(_poly_exp(_level(batch, scale, size), p.poly_n, kernels))
    return levels


def flow_between(
    previous: Sequence[torch.Tensor],
    current: Sequence[torch.Tensor],
    params: FlowParams | None = None,
) -> torch.Tensor:
    """The (N, H, W, 2) flow of ``farneback`` from the two frames' ``expand`` levels (made with
    the same ``params``)."""
    p = params if params is not None else FlowParams()
    if len(previous) != len(current) or not previous:
        raise ValueError(f"expansions of {len(previous)} and {len(current)} pyramid levels")
    flow: torch.Tensor | None = None
    for first, second in zip(previous, current, strict=True):
        if first.shape != second.shape:
            raise ValueError(f"expansions must be alike: {first.shape}, {second.shape}")
        size = (first.shape[-2], first.shape[-1])
        if flow is None:
            flow = first.new_zeros((first.shape[0], 2, *size))
        else:
            flow = functional.interpolate(flow, size=size, mode="bilinear", align_corners=False)
            flow = flow / p.pyr_scale
        weights = _border(size[0], flow.device).view(-1, 1) * _border(size[1], flow.device)
        matrices = _matrices(first, second, flow, weights)
        for i in range(p.iterations):
            flow = _solve(matrices, p.winsize)
            if i < p.iterations - 1:
                matrices = _matrices(first, second, flow, weights)
    assert flow is not None
    return flow.permute(0, 2, 3, 1)


def _cv_round(value: float) -> int:
    """OpenCV's ``cvRound``: to the nearest integer, halves to even."""
    return round(value)


def _steps(height: int, width: int, pyr_scale: float, levels: int) -> int:
    """How many levels below full size OpenCV builds: at most ``levels``, none under 32 px."""
    scale = 1.0
    for k in range(levels):
        scale *= pyr_scale
        if width * scale < MIN_SIZE or height * scale < MIN_SIZE:
            return k
    return levels


def _level(frames: torch.Tensor, scale: float, size: tuple[int, int]) -> torch.Tensor:
    """The frames blurred as OpenCV blurs them for a level at ``scale``, then resized to it."""
    sigma = (1.0 / scale - 1.0) * 0.5
    ksize = max(_cv_round(sigma * 5) | 1, 3)
    kernel = _gaussian(ksize, sigma, frames.device)
    radius = ksize // 2
    blurred = functional.conv2d(
        functional.pad(frames, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1)
    )
    blurred = functional.conv2d(
        functional.pad(blurred, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1)
    )
    if tuple(blurred.shape[-2:]) == size:
        return blurred
    return functional.interpolate(blurred, size=size, mode="bilinear", align_corners=False)


def _gaussian(ksize: int, sigma: float, device: torch.device) -> torch.Tensor:
    """OpenCV's ``getGaussianKernel`` (float): sampled and normalised, or its fixed 3-tap
    kernel where ``sigma`` is 0 (the full-size level, whose ``ksize`` is 3)."""
    if sigma <= 0:
        return torch.tensor(_SMALL_GAUSSIAN_3, device=device)
    x = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).float().to(device)


def _poly_kernels(n: int, sigma: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The applicability ``g`` and its moments ``x g``, ``x^2 g`` over ``-n..n``, and the four
    entries of the inverse moment matrix the expansion needs (``FarnebackPrepareGaussian``)."""
    if sigma < 1.1920929e-07:
        sigma = n * 0.3
    x = torch.arange(-n, n + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * sigma * sigma))
    g = g / g.sum()
    gram = torch.zeros((6, 6), dtype=torch.float64)
    gy, gx = g[:, None], g[None, :]
    xx = x[None, :] ** 2
    yy = x[:, None] ** 2
    gram[0, 0] = (gy * gx).sum()
    gram[1, 1] = (gy * gx * xx).sum()
    gram[3, 3] = (gy * gx * xx * xx).sum()
    gram[5, 5] = (gy * gx * xx * yy).sum()
    gram[2, 2] = gram[0, 3] = gram[0, 4] = gram[3, 0] = gram[4, 0] = gram[1, 1]
    gram[4, 4] = gram[3, 3]
    gram[3, 4] = gram[4, 3] = gram[5, 5]
    inverse = torch.linalg.inv(gram)
    moments = torch.stack([g, x * g, x * x * g]).float().to(device)
    factors = torch.tensor(
        [inverse[1, 1], inverse[0, 3], inverse[3, 3], inverse[5, 5]], dtype=torch.float64
    )
    return moments, factors


def _poly_exp(
    frames: torch.Tensor, n: int, kernels: tuple[torch.Tensor, torch.Tensor]
) -> torch.Tensor:
    """(N, 1, H, W) to the (N, 5, H, W) expansion OpenCV keeps: the linear terms (y, x), the
    quadratic ones (yy, xx) and half the cross term, replicated borders."""
    moments, factors = kernels
    ig11, ig03, ig33, ig55 = (float(f) for f in factors)
    vertical = functional.conv2d(
        functional.pad(frames, (0, 0, n, n), mode="replicate"), moments.view(3, 1, -1, 1)
    )  # (N, 3, H, W): g, xg, xxg down each column
    padded = functional.pad(vertical, (n, n, 0, 0), mode="replicate")

    def across(channel: int, moment: int) -> torch.Tensor:
        return functional.conv2d(
            padded[:, channel : channel + 1], moments[moment].view(1, 1, 1, -1)
        )

    b1, b2, b4 = across(0, 0), across(0, 1), across(0, 2)
    b3, b5, b6 = across(1, 0), across(1, 1), across(2, 0)
    return torch.cat(
        [b3 * ig11, b2 * ig11, b1 * ig03 + b6 * ig33, b1 * ig03 + b4 * ig33, b5 * ig55], dim=1
    )


def _matrices(
    first: torch.Tensor, second: torch.Tensor, flow: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Per pixel, the normal equations' five distinct entries (``FarnebackUpdateMatrices``):
    the second expansion sampled where ``flow`` carries the pixel (bilinear; outside the frame
    its linear terms count as 0), averaged with the first, times OpenCV's border attenuation
    (``weights``, (H, W): the same for every iteration of a level).
    """
    height, width = first.shape[-2:]
    ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, -1, 1)
    xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, -1)
    dx, dy = flow[:, 0], flow[:, 1]
    fx, fy = xs + dx, ys + dy
    x1, y1 = torch.floor(fx), torch.floor(fy)
    inside = (x1 >= 0) & (x1 < width - 1) & (y1 >= 0) & (y1 < height - 1)
    grid = torch.stack([2 * fx / (width - 1) - 1, 2 * fy / (height - 1) - 1], dim=-1)
    sampled = functional.grid_sample(second, grid, mode="bilinear", align_corners=True)
    inside = inside.unsqueeze(1)
    zero = torch.zeros_like(sampled[:, :2])
    linear = torch.where(inside, sampled[:, :2], zero)
    quadratic = torch.where(inside, (first[:, 2:4] + sampled[:, 2:4]) * 0.5, first[:, 2:4])
    cross = torch.where(inside, (first[:, 4:5] + sampled[:, 4:5]) * 0.25, first[:, 4:5] * 0.5)
    r2, r3 = ((first[:, :2] - linear) * 0.5).unbind(1)
    r4, r5 = quadratic.unbind(1)
    r6 = cross[:, 0]
    r2 = r2 + r4 * dy + r6 * dx
    r3 = r3 + r6 * dy + r5 * dx
    r2, r3, r4, r5, r6 = (r * weights for r in (r2, r3, r4, r5, r6))
    return torch.stack(
        [
            r4 * r4 + r6 * r6,
            (r4 + r5) * r6,
            r5 * r5 + r6 * r6,
            r4 * r2 + r6 * r3,
            r6 * r2 + r5 * r3,
        ],
        dim=1,
    )


def _border(length: int, device: torch.device) -> torch.Tensor:
    """OpenCV's attenuation along one axis: its 5 weights at each end (multiplied where the
    two ends meet, as OpenCV's product does)."""
    ramp = torch.tensor(_BORDER, device=device)
    weights = torch.ones(length, device=device)
    head = min(len(ramp), length)
    weights[:head] *= ramp[:head]
    weights[length - head :] *= ramp[:head].flip(0)
    return weights


def _solve(matrices: torch.Tensor, winsize: int) -> torch.Tensor:
    """The flow from the normal equations averaged over a ``winsize`` box (replicated borders;
    ``FarnebackUpdateFlow_Blur``), regularised by 1e-3 as OpenCV's is."""
    m = winsize // 2
    padded = functional.pad(matrices, (m, m, m, m), mode="replicate")
    window = functional.avg_pool2d(padded, 2 * m + 1, stride=1) * ((2 * m + 1) / winsize) ** 2
    g11, g12, g22, h1, h2 = window.unbind(1)
    idet = 1.0 / (g11 * g22 - g12 * g12 + 1e-3)
    return torch.stack([(g11 * h2 - g12 * h1) * idet, (g22 * h1 - g12 * h2) * idet], dim=1)
