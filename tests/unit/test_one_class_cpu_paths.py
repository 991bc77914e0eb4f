"""The one_class model's CPU fast paths change how it computes, never what: the chunked
channels-last backbone gives the features of one plain pass, the motion computed on a helper
thread leaves no trace when the batch fails (the worker then scores it frame by frame), and a
worker's thread setting reaches OpenCV as well as torch."""

from __future__ import annotations

import threading

import cv2
import pytest
import torch

from tests.unit.test_one_class_model import fitted_tensors, frame, manifest, spec
from vigil_shared.vision import one_class_model
from vigil_shared.vision.device import helper_pool, set_cpu_threads
from vigil_shared.vision.efficientnet_lite import EfficientNetLite0, fused_for_inference
from vigil_shared.vision.one_class_model import OneClassFrameModel
from vigil_shared.vision.patches import CPU_CHUNK, PatchFeatureExtractor


def test_chunked_channels_last_features_equal_one_plain_pass() -> None:
    torch.manual_seed(0)
    backbone = fused_for_inference(EfficientNetLite0())
    extractor = PatchFeatureExtractor(backbone, (2, 4)).eval()
    images = torch.randn(2 * CPU_CHUNK + 1, 3, 96, 96)
    with torch.inference_mode():
        fast = extractor(images)
        one_by_one = torch.cat([extractor(image[None]) for image in images])
        plain = _plain_features(extractor, images)
    assert fast.shape == (2 * CPU_CHUNK + 1, extractor.raw_dim, 12, 12)
    torch.testing.assert_close(fast, one_by_one, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)


def _plain_features(extractor: PatchFeatureExtractor, images: torch.Tensor) -> torch.Tensor:
    """The stage features the way they were computed before: default layout, one pass."""
    backbone = extractor.backbone
    out = backbone.act(backbone._bn0(backbone._conv_stem(images.contiguous())))
    wanted = {backbone.stage_ends[s] for s in extractor.stages}
    maps = []
    for index, block in enumerate(backbone._blocks):
        out = block(out.contiguous())
        if index in wanted:
            maps.append(
                torch.nn.functional.avg_pool2d(out, 3, stride=1, padding=1, count_include_pad=False)
            )
        if index == max(wanted):
            break
    size = maps[0].shape[-2:]
    return torch.cat([torch.nn.functional.interpolate(m, size=size) for m in maps], dim=1)


def test_motion_runs_beside_the_backbone_under_inference_mode() -> None:
    seen: list[tuple[str, bool]] = []

    def motion(*_: object) -> int:
        seen.append((threading.current_thread().name, torch.is_inference_mode_enabled()))
        return 7

    future = helper_pool("motion").submit(one_class_model._inference(motion))
    assert future.result() == 7
    [(thread, inference)] = seen
    assert thread.startswith("vigil-motion") and inference


def test_a_batch_that_fails_leaves_its_cameras_motion_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flow of a batch runs beside its backbone; when the backbone fails (a frame it cannot
    score), the cameras' previous frames and motion maps are put back, so scoring the same
    frames again gives what a model that never saw the failed batch gives."""
    model_spec = spec()
    tensors = fitted_tensors(model_spec)
    model = OneClassFrameModel.from_artifact(manifest(model_spec), tensors, "cpu")
    reference = OneClassFrameModel.from_artifact(manifest(model_spec), tensors, "cpu")
    first = [frame(10), frame(16)]
    batch = [frame(22), frame(40), frame(60)]
    model.score_frames(["cam", "cam"], first)
    reference.score_frames(["cam", "cam"], first)

    def broken(*_: object) -> object:
        raise RuntimeError("a frame the backbone cannot take")

    with monkeypatch.context() as patch:
        patch.setattr(model, "_appearance_maps", broken)
        with pytest.raises(RuntimeError, match="cannot take"):
            model.score_frames(["cam", "new", "cam"], batch)
    again = [s.score for s in model.score_frames(["cam", "new", "cam"], batch)]
    expected = [s.score for s in reference.score_frames(["cam", "new", "cam"], batch)]
    assert again == pytest.approx(expected, abs=1e-6)
    # Had the failed batch advanced the motion, the scores would differ: "cam" would see its
    # frame 60 as the one before frame 22, and "new" would not be new.
    reference.score_frames(["cam", "new", "cam"], batch)
    advanced = [s.score for s in reference.score_frames(["cam", "new", "cam"], batch)]
    assert advanced != pytest.approx(expected, abs=1e-3)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_workers_thread_count_reaches_torch_and_opencv(threads: int) -> None:
    before = torch.get_num_threads(), cv2.getNumThreads()
    try:
        set_cpu_threads(threads)
        assert (torch.get_num_threads(), cv2.getNumThreads()) == (threads, threads)
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
