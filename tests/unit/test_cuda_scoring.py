"""Scoring on a CUDA device matches scoring on the CPU: the warm-up embedder under fp16
autocast, the one_class model (fp16 kNN products, motion on the device) and torch's flows
(Lucas-Kanade; Farneback, which a CUDA device runs in torch, against OpenCV's).
Marked ``gpu``: ``tests/conftest.py`` skips them where torch sees no CUDA device."""

from __future__ import annotations

import pytest
import torch

from tests.unit.test_one_class_model import fitted_tensors, frame, manifest, spec
from tests.unit.test_torch_farneback import moving_pairs, opencv
from tests.unit.test_torch_flow import texture
from vigil_inference.embedding import BatchEmbedder
from vigil_shared.vision.backbones import (
    LITE0_PREPROCESSING,
    FrameEmbedder,
    load_efficientnet_lite0,
)
from vigil_shared.vision.efficientnet_lite import fused_for_inference
from vigil_shared.vision.motion import FlowParams
from vigil_shared.vision.one_class_model import OneClassFrameModel
from vigil_shared.vision.torch_farneback import farneback
from vigil_shared.vision.torch_flow import lucas_kanade

pytestmark = pytest.mark.gpu


def test_fp16_autocast_embeddings_match_fp32_on_the_cpu() -> None:
    module = fused_for_inference(load_efficientnet_lite0().module)
    prep = LITE0_PREPROCESSING.model_copy(update={"image_size": 160})
    images = [frame(20 + 10 * step) for step in range(6)]
    cpu = BatchEmbedder(FrameEmbedder(module), prep, device="cpu", amp=False)(images)
    cuda_images = [image.cuda() for image in images]
    half = BatchEmbedder(FrameEmbedder(module), prep, device="cuda", amp=True)(cuda_images)
    assert half.shape == cpu.shape and half.dtype == torch.float32
    cosine = torch.nn.functional.cosine_similarity(half, cpu, dim=1)
    assert float(cosine.min()) > 0.999
    # What the warm-up bank ranks by: distances between frames, the same within 2 %.
    torch.testing.assert_close(torch.cdist(half, half), torch.cdist(cpu, cpu), rtol=0.02, atol=0.02)


@pytest.mark.parametrize("method", ["farneback", "lucas_kanade", "dis"])
def test_one_class_scores_on_cuda_match_the_cpu(method: str) -> None:
    model_spec = spec(motion={**spec().motion.model_dump(), "method": method})  # type: ignore[union-attr]
    tensors = fitted_tensors(model_spec)
    frames = [frame(20 + 5 * step) for step in range(6)]
    cameras = ["a", "b"] * 3
    scores = {}
    for device in ("cpu", "cuda"):
        model = OneClassFrameModel.from_artifact(manifest(model_spec), tensors, device)
        assert model.half_bank == (device == "cuda")
        images = [image.to(device) for image in frames]
        scores[device] = [s.score for s in model.score_frames(cameras, images)]
    assert scores["cuda"] == pytest.approx(scores["cpu"], rel=0.02, abs=0.02)


def test_lucas_kanade_on_cuda_matches_the_cpu() -> None:
    scene = texture()
    previous, current = scene[20:120, 20:180], scene[22:122, 17:177]
    cpu = lucas_kanade(previous[None], current[None])
    cuda = lucas_kanade(previous[None].cuda(), current[None].cuda())
    assert cuda.is_cuda
    torch.testing.assert_close(cuda.cpu(), cpu, rtol=1e-3, atol=1e-2)


def test_farneback_on_cuda_is_opencvs_flow() -> None:
    """The default flow on a CUDA device (torch, batched) against OpenCV's on the CPU."""
    previous, current = moving_pairs()
    expected = opencv(previous, current, FlowParams(height=120, width=180))
    flow = farneback(previous.cuda(), current.cuda())
    assert flow.is_cuda
    error = (flow.cpu() - expected).norm(dim=-1)
    assert float(error.mean()) < 1e-3 and float(error.max()) < 0.01
