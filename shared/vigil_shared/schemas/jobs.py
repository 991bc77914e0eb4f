"""Fine-tuning job specs, validated before anything is queued.

The API validates a spec with these models and the trainer validates it again on receipt, so a
task sent to the queue by any other client still cannot run with a malformed spec. A spec is
either a ``one_class`` job (normal frames only, ``schemas/one_class.py``) or a ``classify`` job
(labeled frames, any class set) told apart by ``task``; a spec without ``task`` is ``one_class``,
which is what specs written before ``classify`` existed mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from vigil_shared.datasets import DatasetRef, GroupName
from vigil_shared.schemas.assignments import ModelId
from vigil_shared.schemas.inputs import SafeName
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.schemas.search_space import Distribution, check_space

__all__ = [
    "ARCHITECTURES",
    "BUILTIN_LOSSES",
    "BUILTIN_METRICS",
    "AugmentSpec",
    "ClassifySpec",
    "DatasetRef",
    "FusionSpec",
    "HyperSpec",
    "JobSpec",
    "JobStatus",
    "OneClassSpec",
    "SearchSpec",
    "StructureSpec",
]


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLING = "cancelling"
    """Cancel requested while running; the worker stops at its next step and sets CANCELLED."""
    CANCELLED = "cancelled"


ARCHITECTURES = (
    "efficientnet_lite0",
    "resnet18",
    "resnet50",
    "vgg16",
    "efficientnet_b0",
    "mobilenet_v3_large",
)
Architecture = Literal[
    "efficientnet_lite0", "resnet18", "resnet50", "vgg16", "efficientnet_b0", "mobilenet_v3_large"
]
BUILTIN_LOSSES = ("cross_entropy", "weighted_cross_entropy", "focal")
BUILTIN_METRICS = ("accuracy", "macro_f1", "balanced_accuracy", "auroc", "aupr", "loss")
# Losses and metrics a deployment registers in the trainer are named ``custom:<name>``; the
# trainer refuses an unknown custom name with the list it knows before it loads any data.
_PLUGIN = re.compile(r"^custom:[a-z][a-z0-9_]{0,63}$")


def _named(kind: str, builtin: tuple[str, ...]) -> Callable[[str], str]:
    def check(name: str) -> str:
        if name not in builtin and not _PLUGIN.match(name):
            raise ValueError(
                f"unknown {kind} {name!r}; use one of {', '.join(builtin)} or custom:<name>"
            )
        return name

    return check


# A built-in name or ``custom:<name>``: lowercase letters, digits, '_' and one ':'.
_PLUGGABLE_NAME = StringConstraints(max_length=71, pattern=r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)?$")
LossName = Annotated[
    str,
    _PLUGGABLE_NAME,
    AfterValidator(_named("loss", BUILTIN_LOSSES)),
    Field(examples=list(BUILTIN_LOSSES), description="A built-in loss or custom:<name>."),
]
MetricName = Annotated[
    str,
    _PLUGGABLE_NAME,
    AfterValidator(_named("metric", BUILTIN_METRICS)),
    Field(examples=list(BUILTIN_METRICS), description="A built-in metric or custom:<name>."),
]
ClassName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- augment: training data only ---------------------------------------------------------------


class RotationAug(_Part):
    degrees: float = Field(default=10.0, gt=0, le=180, description="Uniform in ±degrees.")


class ScaleAug(_Part):
    """Zoom by a factor drawn uniformly from [min, max] (below 1 shrinks the frame)."""

    min: float = Field(default=0.9, gt=0, le=2)
    max: float = Field(default=1.1, gt=0, le=2)

    @model_validator(mode="after")
    def _ordered(self) -> ScaleAug:
        if self.min > self.max:
            raise ValueError(f"scale.min ({self.min}) exceeds scale.max ({self.max})")
        return self


class CropAug(_Part):
    """A random crop covering at least ``min_area`` of the frame, resized back."""

    min_area: float = Field(default=0.8, ge=0.08, le=1)


class FlipAug(_Part):
    horizontal: float = Field(default=0.5, ge=0, le=1, description="Probability.")
    vertical: float = Field(default=0.0, ge=0, le=1, description="Probability.")


class ColorJitterAug(_Part):
    brightness: float = Field(default=0.2, ge=0, le=1)
    contrast: float = Field(default=0.2, ge=0, le=1)
    saturation: float = Field(default=0.2, ge=0, le=1)
    hue: float = Field(default=0.0, ge=0, le=0.5)


class BlurAug(_Part):
    sigma: float = Field(default=1.0, gt=0, le=10, description="Largest Gaussian sigma, pixels.")
    p: float = Field(default=0.3, ge=0, le=1)


class NoiseAug(_Part):
    std: float = Field(default=0.03, gt=0, le=0.5, description="Gaussian noise, image in [0, 1].")
    p: float = Field(default=0.3, ge=0, le=1)


class AugmentSpec(_Part):
    """Each transform is off when null; strengths are the transform's own parameters."""

    rotation: RotationAug | None = None
    scale: ScaleAug | None = None
    crop: CropAug | None = Field(default_factory=CropAug)
    flip: FlipAug | None = Field(default_factory=FlipAug)
    color_jitter: ColorJitterAug | None = None
    blur: BlurAug | None = None
    noise: NoiseAug | None = None


# --- structure: head and what trains ----------------------------------------------------------


class HeadSpec(_Part):
    kind: Literal["linear", "mlp"] = "linear"
    hidden: int = Field(default=256, ge=8, le=4096, description="MLP hidden width.")
    dropout: float = Field(default=0.2, ge=0, lt=1)


class FreezeSpec(_Part):
    """``all_but_head`` trains the head only (a linear probe with a linear head);
    ``last_n_stages`` also trains the last ``last_n_stages`` backbone stages; ``none`` trains all.
    With ``unfreeze_every``, one more stage (top down) becomes trainable every that many epochs.
    """

    mode: Literal["none", "all_but_head", "last_n_stages"] = "last_n_stages"
    last_n_stages: int = Field(default=2, ge=1, le=32)
    unfreeze_every: int | None = Field(default=None, ge=1, le=100)


class StructureSpec(_Part):
    head: HeadSpec = Field(default_factory=HeadSpec)
    freeze: FreezeSpec = Field(default_factory=FreezeSpec)
    lr_decay: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Discriminative learning rates: a stage k below the head gets lr * decay^k.",
    )


# --- hyper: optimisation ----------------------------------------------------------------------


class EarlyStopping(_Part):
    patience: int = Field(default=3, ge=1, le=100, description="Epochs without improvement.")
    min_delta: float = Field(default=0.0, ge=0)


class HyperSpec(_Part):
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(default=1e-3, gt=0, le=1)
    momentum: float = Field(default=0.9, ge=0, lt=1, description="SGD only.")
    weight_decay: float = Field(default=1e-4, ge=0, le=1)
    schedule: Literal["constant", "cosine", "step"] = "cosine"
    warmup_epochs: int = Field(default=0, ge=0, le=50)
    epochs: int = Field(default=10, ge=1, le=500)
    batch_size: int = Field(default=32, ge=1, le=1024)
    label_smoothing: float = Field(default=0.0, ge=0, lt=0.5)
    loss: LossName = "cross_entropy"
    focal_gamma: float = Field(default=2.0, ge=0, le=10, description="Focal loss only.")
    metric: MetricName = Field(
        default="macro_f1", description="Validation metric that picks the best epoch."
    )
    early_stopping: EarlyStopping | None = None
    seed: int = Field(default=0, ge=0, le=2**31 - 1)


# --- search and fusion ------------------------------------------------------------------------


class SearchSpec(_Part):
    """An Optuna study: each trial is this spec with ``space`` sampled at its dotted paths."""

    trials: int = Field(default=8, ge=1, le=500)
    space: dict[str, Distribution] = Field(
        min_length=1,
        examples=[{"hyper.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}],
    )
    pruner: Literal["median", "successive_halving", "none"] = "median"
    metric: MetricName = "macro_f1"
    direction: Literal["maximize", "minimize"] = "maximize"
    timeout_s: int | None = Field(default=None, ge=10, le=7 * 24 * 3600)

    @field_validator("space")
    @classmethod
    def _paths_exist(cls, space: dict[str, Distribution]) -> dict[str, Distribution]:
        check_space(ClassifySpec, space)
        return space


class FusionSpec(_Part):
    """``top_k_trials`` ensembles the search's best ``k`` trials; ``registry_models`` ensembles
    existing models; ``weight_average`` averages fine-tuned checkpoints of one architecture."""

    kind: Literal["top_k_trials", "registry_models", "weight_average"]
    k: int = Field(default=3, ge=2, le=16)
    model_ids: tuple[ModelId, ...] = ()
    method: Literal["probability", "score"] = "probability"

    @model_validator(mode="after")
    def _models_named_when_needed(self) -> FusionSpec:
        if self.kind == "registry_models" and len(self.model_ids) < 2:
            raise ValueError("fusion.kind registry_models needs at least 2 model_ids")
        if self.kind != "registry_models" and self.model_ids:
            raise ValueError(
                f"fusion.model_ids is only used with kind registry_models, not {self.kind}"
            )
        return self


# --- the classify spec ------------------------------------------------------------------------


class ValidationSplit(_Part):
    """Held out by ``group`` (clip, camera), never by random frame, so validation frames are
    not near-duplicates of training frames."""

    fraction: float = Field(default=0.2, gt=0, lt=1)
    groups: tuple[GroupName, ...] | None = Field(
        default=None, description="Exactly these groups are held out (overrides fraction)."
    )


class ClassifySpec(BaseModel):
    """Fine-tune a pretrained backbone on labeled frames; the anomaly score is
    1 - P(normal classes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: SafeName = Field(examples=["gate-intrusion"])
    task: Literal["classify"] = "classify"
    dataset: DatasetRef
    architecture: Architecture = "efficientnet_lite0"
    weights_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Pin imported weights by sha256; by default the catalog's source is used.",
    )
    parent_model_id: ModelId | None = Field(
        default=None, description="Start from this classify model's weights (same architecture)."
    )
    image_size: int = Field(default=224, ge=32, le=640, multiple_of=32)
    normal_classes: tuple[ClassName, ...] = Field(default=("normal",), min_length=1)
    validation: ValidationSplit = Field(default_factory=ValidationSplit)
    augment: AugmentSpec = Field(default_factory=AugmentSpec)
    structure: StructureSpec = Field(default_factory=StructureSpec)
    hyper: HyperSpec = Field(default_factory=HyperSpec)
    search: SearchSpec | None = None
    fusion: FusionSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ClassifySpec:
        if self.fusion is not None and self.fusion.kind == "top_k_trials":
            if self.search is None:
                raise ValueError("fusion.kind top_k_trials needs a search (set search)")
            if self.fusion.k > self.search.trials:
                raise ValueError(
                    f"fusion.k ({self.fusion.k}) exceeds search.trials ({self.search.trials})"
                )
        if self.fusion is not None and self.fusion.kind == "registry_models" and self.search:
            raise ValueError("fusion.kind registry_models trains nothing: remove search")
        return self


def _task_of(value: Any) -> str | None:
    """A spec without ``task`` is a one_class spec (the only kind before classify existed)."""
    if isinstance(value, dict):
        return str(value.get("task", "one_class"))
    if isinstance(value, OneClassSpec | ClassifySpec):
        return value.task
    return None  # not an object (a JSON array, a number): pydantic answers "not a valid tag"


JobSpec = Annotated[
    Annotated[OneClassSpec, Tag("one_class")] | Annotated[ClassifySpec, Tag("classify")],
    Discriminator(
        _task_of,
        custom_error_type="invalid_task",
        custom_error_message="task must be 'one_class' or 'classify'",
    ),
]


class JobSpecDocument(RootModel[JobSpec]):
    """The union as one model, for JSON Schema export and ``model_validate`` by callers."""
