"""Freezing policies train exactly what they say; learning rates follow the stages."""

from __future__ import annotations

import torch

from vigil_shared.schemas.jobs import FreezeSpec, StructureSpec
from vigil_shared.vision.catalog import build_classifier
from vigil_trainer.classify.structure import apply_freeze, param_groups, trainable_stages


def step_once(freeze: FreezeSpec, *, epoch: int = 0) -> tuple[dict[str, torch.Tensor], ...]:
    torch.manual_seed(0)
    net = build_classifier("resnet18", n_classes=2)
    net.train()
    apply_freeze(net, freeze, epoch=epoch)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.SGD(param_groups(net, StructureSpec(), lr=0.1), lr=0.1)
    loss = net(torch.randn(4, 3, 32, 32)).logsumexp(1).mean()
    loss.backward()
    optimizer.step()
    return before, {k: v.clone() for k, v in net.state_dict().items()}


def changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor], prefix: str) -> bool:
    return any(not torch.equal(before[k], after[k]) for k in before if k.startswith(prefix))


def test_all_but_head_changes_only_the_head_and_keeps_bn_statistics() -> None:
    before, after = step_once(FreezeSpec(mode="all_but_head"))
    assert changed(before, after, "head.")
    for prefix in ("body.conv1", "body.bn1", "body.layer1", "body.layer4"):
        assert not changed(before, after, prefix), prefix  # weights and running stats


def test_last_n_stages_trains_the_top_stages_only() -> None:
    before, after = step_once(FreezeSpec(mode="last_n_stages", last_n_stages=2))
    assert changed(before, after, "body.layer4.") and changed(before, after, "body.layer3.")
    assert not changed(before, after, "body.layer2.")
    assert not changed(before, after, "body.conv1.")


def test_none_trains_everything() -> None:
    before, after = step_once(FreezeSpec(mode="none"))
    assert changed(before, after, "body.conv1.") and changed(before, after, "body.layer1.")


def test_gradual_unfreezing_adds_a_stage_on_schedule() -> None:
    freeze = FreezeSpec(mode="all_but_head", unfreeze_every=2)
    assert [trainable_stages(freeze, n_stages=5, epoch=e) for e in range(12)] == [
        0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
    ]  # fmt: skip
    before, after = step_once(freeze, epoch=2)
    assert changed(before, after, "body.layer4.") and not changed(before, after, "body.layer3.")


def test_discriminative_learning_rates_decay_down_the_stages() -> None:
    net = build_classifier("resnet18", n_classes=2)
    groups = param_groups(net, StructureSpec(lr_decay=0.5), lr=0.1)
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs["head"] == 0.1
    assert lrs["stage4"] == 0.05 and lrs["stage3"] == 0.025 and lrs["stage0"] == 0.1 * 0.5**5
    every = {id(p) for g in groups for p in g["params"]}
    assert every == {id(p) for p in net.parameters()}  # nothing left out of the optimizer
