"""A camera's frame rate against the units of its model's motion: what the API tells an operator.

A motion model's flows are displacements per frame interval of footage at one rate, its
``units_fps`` (``vision.motion_pace`` takes every camera in those units). The fit records that
rate in the model's metrics (``MOTION_FPS``), and the API checks each camera's rate against the
model scoring it (``rate_notice``): outside the range the pacing was measured or built for, the
camera still scores, less surely, and the operator should know. Torch-free, for the API.
"""

from __future__ import annotations

MAX_STRIDE = 4
"""Furthest back a flow reaches (a camera 4.5 times faster than the units' rate or more keeps 4
and scales the rest): bounds the frames each camera keeps and a replay's context."""
MOTION_FPS = "motion_fps"
"""The fit metric that holds a model's motion units (its ``units_fps``), where it has a motion
stream (models fitted before 7 Dec have none)."""
SLOWEST_MEASURED = 0.5
"""The slowest camera, against its model's motion units, that was measured to score as a
camera at the units' rate does (Ped2, fitted at 10 fps and served at 5: docs/one-class.md)."""


def rate_notice(camera_fps: float, units_fps: float | None) -> str | None:
    """What an operator should know about a camera whose frame rate is outside what its
    model's motion handles as measured: None within it (or with no motion units)."""
    if units_fps is None or units_fps <= 0 or camera_fps <= 0:
        return None
    ratio = camera_fps / units_fps
    fit = f"its model's motion is in the units of {units_fps:g} fps footage"
    if ratio > MAX_STRIDE + 0.5:
        return (
            f"camera at {camera_fps:.1f} fps, {ratio:.1f} times the rate {fit}: flows reach "
            f"{MAX_STRIDE} frames back at most and are scaled by {ratio / MAX_STRIDE:.2f}, which "
            "was not measured; lower the camera's fps or fit a model on its own footage"
        )
    if ratio < SLOWEST_MEASURED:
        return (
            f"camera at {camera_fps:.1f} fps, under half the rate {fit}: each flow spans "
            f"{1 / ratio:.1f} of its frame intervals and is scaled down, measured only to half "
            "the rate; raise the camera's fps or fit a model on its own footage"
        )
    return None
