"""What only runs on a CUDA device: nvJPEG batch decoding, bf16 channels-last scoring and a
bf16 training fit. Marked ``gpu``: ``tests/conftest.py`` skips them where torch sees no CUDA."""

from __future__ import annotations

import math

import pytest
import torch

from tests.factories import model_manifest, scene_jpeg
from tests.unit.classify_support import random_weights, tiny_spec, two_class_frames
from vigil_shared.schemas.manifests import Preprocessing
from vigil_shared.vision.catalog import build_classifier
from vigil_shared.vision.classifier_model import ClassifierFrameModel
from vigil_shared.vision.preprocess import UndecodableImageError, decode, decode_many
from vigil_trainer.classify.engine import FitHooks, fit_classifier

pytestmark = pytest.mark.gpu


def test_nvjpeg_decodes_a_batch_as_the_cpu_does_and_isolates_a_bad_image() -> None:
    good = [scene_jpeg(step) for step in range(3)]
    on_gpu = decode_many(good, "cuda")
    for payload, image in zip(good, on_gpu, strict=True):
        assert isinstance(image, torch.Tensor) and image.is_cuda
        cpu = decode(payload)
        assert image.shape == cpu.shape
        # Two JPEG decoders may round the inverse DCT differently: a grey level at most here.
        assert float((image.cpu().int() - cpu.int()).abs().float().mean()) < 1.0
    mixed = decode_many([good[0], b"not a jpeg", good[1]], "cuda")
    assert isinstance(mixed[1], UndecodableImageError)
    assert isinstance(mixed[0], torch.Tensor) and isinstance(mixed[2], torch.Tensor)
    assert mixed[0].is_cuda and mixed[2].is_cuda


def test_bf16_channels_last_scores_match_the_cpu_scores() -> None:
    torch.manual_seed(0)
    net = build_classifier("efficientnet_lite0", n_classes=3).eval()
    prep = Preprocessing(image_size=64, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    manifest = model_manifest(
        "m-cuda", classes=("bike", "car", "normal"), preprocessing=prep, head="linear"
    )
    frames = [torch.randint(0, 255, (3, 48, 64), dtype=torch.uint8) for _ in range(4)]
    cpu = ClassifierFrameModel.from_artifact(manifest, net.state_dict(), "cpu")
    cuda = ClassifierFrameModel.from_artifact(manifest, net.state_dict(), "cuda")
    cpu_probs, cpu_heat = cpu.probabilities(frames)
    cuda_probs, cuda_heat = cuda.probabilities(frames)
    assert cuda_probs.is_cuda and cuda_heat.shape == cpu_heat.shape
    assert torch.allclose(cuda_probs.cpu(), cpu_probs, atol=0.05)
    scores = cuda.score_frames(["cam"] * 4, frames)
    expected = (1 - cpu_probs[:, 2]).tolist()
    assert [s.score for s in scores] == pytest.approx(expected, abs=0.05)


def test_a_classify_fit_trains_on_cuda_with_finite_losses() -> None:
    fit = fit_classifier(
        spec=tiny_spec(),
        data=two_class_frames(),
        device="cuda",
        hooks=FitHooks(),
        weights=random_weights(),
    )
    assert fit.history and all(math.isfinite(v) for row in fit.history for v in row.values())
    sums = fit.val_probabilities.sum(dim=1)
    assert torch.allclose(sums.float().cpu(), torch.ones(len(sums)), atol=1e-3)
    assert {"accuracy", "macro_f1", "auroc"} <= set(fit.metrics)
