"""Dense optical flow in torch on batches of frame pairs: pyramidal Lucas-Kanade.

OpenCV's Farneback runs one frame pair at a time on one CPU core (about 25 ms at 360x240), and
on a CUDA host it would take every frame off the device. This is the same kind of estimate
(coarse-to-fine, windowed least squares on image gradients) written as a handful of batched
tensor ops: every pair of a batch at once, on whichever device holds the frames, with nothing
but torch. Per pixel it solves the 2x2 Lucas-Kanade system over a ``winsize`` box window,
starting at the coarsest of ``levels`` pyramid levels and refining the upsampled flow
``iterations`` times at each finer level, each time warping the current frame by the flow so
far (``grid_sample``). A flat window (no gradient to speak of) is regularised towards zero
flow rather than producing noise.
"""

from __future__ import annotations

import torch
from torch.nn import functional

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
_EPS = 1e-2  # grey levels squared per pixel: below this a window is flat


def lucas_kanade(
    previous: torch.Tensor,
    current: torch.Tensor,
    *,
    levels: int = 3,
    winsize: int = 15,
    iterations: int = 3,
) -> torch.Tensor:
    """(N, H, W) grey frames (0-255, any float dtype) to the (N, H, W, 2) displacement in pixels
    (x, y) that carries each pixel of ``previous`` to ``current``."""
    if previous.shape != current.shape or previous.dim() != 3:
        raise ValueError(f"frame pairs must be (N, H, W) alike: {previous.shape}, {current.shape}")
    first = _pyramid(previous.float().unsqueeze(1), levels)
    second = _pyramid(current.float().unsqueeze(1), levels)
    flow = first[-1].new_zeros((first[-1].shape[0], 2, *first[-1].shape[-2:]))
    for level in range(len(first) - 1, -1, -1):
        if flow.shape[-2:] != first[level].shape[-2:]:
            flow = 2.0 * functional.interpolate(
                flow, size=first[level].shape[-2:], mode="bilinear", align_corners=False
            )
        flow = _refine(first[level], second[level], flow, winsize=winsize, iterations=iterations)
    return flow.permute(0, 2, 3, 1)


def _pyramid(frames: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Full resolution first, each next level half the size, while 8 pixels remain. Each level
    is blurred (binomial 5-tap, as OpenCV's pyrDown) before it is subsampled: fine texture would
    otherwise alias into patterns that move wrongly and mislead every finer level."""
    out = [frames]
    while len(out) < levels and min(out[-1].shape[-2:]) >= 16:
        padded = functional.pad(out[-1], (2, 2, 2, 2), mode="replicate")
        kernel = _BINOMIAL.to(frames)
        blurred = functional.conv2d(padded, kernel.view(1, 1, 1, 5))
        out.append(functional.conv2d(blurred, kernel.view(1, 1, 5, 1), stride=(2, 1))[..., ::2])
    return out


def _gradients(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Central differences (grey levels per pixel), the border replicated."""
    padded = functional.pad(frames, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) * 0.5
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) * 0.5
    return gx, gy


def _window(values: torch.Tensor, winsize: int) -> torch.Tensor:
    """Box-window mean of each channel (same size, the border replicated), from running sums:
    a few ops per pixel whatever the window, where ``avg_pool2d`` costs ``winsize**2``."""
    half = winsize // 2
    padded = functional.pad(values, (half + 1, half, half + 1, half), mode="replicate")
    rows = padded.cumsum(-1)
    rows = rows[..., winsize:] - rows[..., :-winsize]
    cols = rows.cumsum(-2)
    return (cols[..., winsize:, :] - cols[..., :-winsize, :]) / (winsize * winsize)


def _refine(
    first: torch.Tensor, second: torch.Tensor, flow: torch.Tensor, *, winsize: int, iterations: int
) -> torch.Tensor:
    """``iterations`` Lucas-Kanade steps at one level; (N, 1, H, W) frames, (N, 2, H, W) flow."""
    gx, gy = _gradients(first)
    # The structure tensor depends on the first frame only: its window sums are computed once.
    sxx, sxy, syy = _window(torch.cat([gx * gx, gx * gy, gy * gy], dim=1), winsize).unbind(1)
    det = sxx * syy - sxy * sxy
    trace = sxx + syy
    det = det + _EPS * (trace + _EPS)  # flat or one-dimensional windows: towards zero flow
    n, _, h, w = first.shape
    base = _base_grid(n, h, w, first)
    for _ in range(iterations):
        warped = functional.grid_sample(
            second, _sampling_grid(base, flow, h, w), align_corners=True, padding_mode="border"
        )
        diff = warped - first
        sxt, syt = _window(torch.cat([gx * diff, gy * diff], dim=1), winsize).unbind(1)
        du = (syy * sxt - sxy * syt) / det
        dv = (sxx * syt - sxy * sxt) / det
        flow = flow - torch.stack([du, dv], dim=1)
    return flow


def _base_grid(n: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    ys = torch.arange(h, device=like.device, dtype=like.dtype)
    xs = torch.arange(w, device=like.device, dtype=like.dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=0).expand(n, 2, h, w)


def _sampling_grid(base: torch.Tensor, flow: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Pixel positions ``base + flow`` as grid_sample's (N, H, W, 2) coordinates in [-1, 1]."""
    position = base + flow
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=flow.device)
    return (position.permute(0, 2, 3, 1) * scale.to(flow.dtype)) - 1.0
