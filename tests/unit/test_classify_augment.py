"""Each augmentation does what its name says, and only training frames are augmented."""

from __future__ import annotations

import torch

from vigil_shared.schemas.jobs import AugmentSpec
from vigil_trainer.classify.augment import augment_batch, build_train_transform, to_float

S = 32


def only(**parts: object) -> AugmentSpec:
    return AugmentSpec.model_validate({"crop": None, "flip": None, **parts})


def left_bar() -> torch.Tensor:
    image = torch.zeros((3, S, S), dtype=torch.uint8)
    image[:, 8:24, 0:6] = 255
    return image


def test_nothing_on_means_only_scaling_to_unit_range() -> None:
    image = left_bar()
    out = build_train_transform(only(), image_size=S)(image)
    assert torch.equal(out, image.float() / 255)


def test_horizontal_flip_mirrors_the_frame() -> None:
    out = build_train_transform(only(flip={"horizontal": 1.0}), image_size=S)(left_bar())
    assert torch.equal(out, left_bar().flip(-1).float() / 255)


def test_vertical_flip_mirrors_top_to_bottom() -> None:
    out = build_train_transform(only(flip={"horizontal": 0.0, "vertical": 1.0}), image_size=S)(
        left_bar()
    )
    assert torch.equal(out, left_bar().flip(-2).float() / 255)


def test_rotation_moves_pixels_around_the_centre() -> None:
    torch.manual_seed(3)
    image = left_bar()
    out = build_train_transform(only(rotation={"degrees": 90}), image_size=S)(image)
    assert not torch.equal(out, image.float() / 255)
    assert out.shape == (3, S, S)
    assert out[:, S // 2, S // 2].sum() == 0  # the centre stays where it is (dark)


def test_crop_zooms_in_and_keeps_the_size() -> None:
    torch.manual_seed(0)
    image = torch.arange(S).repeat(3, S, 1).to(torch.uint8) * 8
    out = build_train_transform(only(crop={"min_area": 0.25}), image_size=S)(image)
    assert out.shape == (3, S, S)
    # a crop of a left-to-right ramp is a flatter ramp: fewer distinct columns' worth of range
    assert float(out[0, 0, -1] - out[0, 0, 0]) < float(image[0, 0, -1] - image[0, 0, 0]) / 255


def test_scale_changes_the_geometry() -> None:
    torch.manual_seed(1)
    out = build_train_transform(only(scale={"min": 0.5, "max": 0.6}), image_size=S)(left_bar())
    assert out.sum() < left_bar().float().sum() / 255  # shrunk: the bar covers less area


def test_colour_jitter_changes_intensity() -> None:
    torch.manual_seed(2)
    image = torch.full((3, S, S), 128, dtype=torch.uint8)
    spec = only(color_jitter={"brightness": 0.9, "contrast": 0, "saturation": 0, "hue": 0})
    out = build_train_transform(spec, image_size=S)(image)
    assert abs(float(out.mean()) - 128 / 255) > 0.01


def test_blur_smooths_a_checkerboard() -> None:
    board = ((torch.arange(S)[:, None] + torch.arange(S)[None, :]) % 2 * 255).to(torch.uint8)
    image = board.repeat(3, 1, 1)
    out = build_train_transform(only(blur={"sigma": 3.0, "p": 1.0}), image_size=S)(image)
    assert float(out.std()) < 0.5 * float((image.float() / 255).std())


def test_noise_changes_pixels_but_not_the_mean() -> None:
    torch.manual_seed(4)
    image = torch.full((3, S, S), 128, dtype=torch.uint8)
    out = build_train_transform(only(noise={"std": 0.1, "p": 1.0}), image_size=S)(image)
    assert float((out - 128 / 255).abs().mean()) > 0.03
    assert abs(float(out.mean()) - 128 / 255) < 0.02


def test_each_frame_of_a_batch_gets_its_own_draw_and_validation_none() -> None:
    torch.manual_seed(5)
    batch = left_bar().repeat(16, 1, 1, 1)
    out = augment_batch(build_train_transform(only(flip={"horizontal": 0.5}), image_size=S), batch)
    flipped = [bool(torch.equal(o, batch[0].flip(-1).float() / 255)) for o in out]
    assert 0 < sum(flipped) < 16
    assert torch.equal(to_float(batch), batch.float() / 255)
