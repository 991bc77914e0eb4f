"""The model manifest: what an artifact is, where it came from and how to use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from vigil_shared.schemas.jobs import JobSpec
from vigil_shared.schemas.one_class import with_stored_defaults

MANIFEST_SCHEMA: Literal["vigil.model-manifest.v1"] = "vigil.model-manifest.v1"
Sha256 = str


class WeightsProvenance(BaseModel):
    """Where pretrained weights came from, checked by sha256 every time they are loaded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    source: str = Field(description="Package, URL or registry import the file came from.")
    sha256: Sha256 = Field(pattern=r"^[0-9a-f]{64}$")


class Preprocessing(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


class ClassMetrics(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    precision: float
    recall: float
    f1: float
    support: int


class Evaluation(BaseModel):
    """Held-out evaluation (split by group, never by random frame), for reports and comparison.

    ``confusion_matrix[i][j]`` counts frames of ``classes[i]`` predicted as ``classes[j]``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    split: Literal["group"] = "group"
    validation_groups: tuple[str, ...]
    n_validation: int
    classes: tuple[str, ...]
    confusion_matrix: tuple[tuple[int, ...], ...]
    per_class: dict[str, ClassMetrics]


class ProductionComparison(BaseModel):
    """The current production model scored on the same held-out frames, when there is one."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model_id: str
    scope: str = Field(description="The camera id (or ``*``) whose production model this is.")
    metrics: dict[str, float] = Field(default_factory=dict)
    delta: dict[str, float] = Field(
        default_factory=dict, description="This model minus production, per metric."
    )
    unavailable: str | None = Field(
        default=None,
        description="Why production could not be scored (e.g. its artifact is missing or "
        "tampered); the candidate is still registered, without the comparison figures.",
    )


class TrialSummary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    number: int
    state: Literal["complete", "pruned", "failed"]
    value: float | None
    params: dict[str, str | int | float | bool]
    duration_s: float


class StudySummary(BaseModel):
    """A hyperparameter search: every trial, and which one the model was retrained from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    direction: Literal["maximize", "minimize"]
    best_trial: int
    trials: tuple[TrialSummary, ...]


class EnsembleMember(BaseModel):
    """One registry model inside an ``ensemble``, pinned: inference refuses the member when its
    manifest or artifact is no longer the one the ensemble was fitted on."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    model_id: str
    task: Literal["one_class", "classify"]
    manifest_sha256: Sha256 = Field(pattern=r"^[0-9a-f]{64}$")
    artifact_sha256: Sha256 = Field(pattern=r"^[0-9a-f]{64}$")
    score_center: float = Field(
        description="The member's score is mapped to (score - center) / scale before averaging "
        "(score method; 0 for probability averaging)."
    )
    score_scale: float = Field(gt=0, description="1 for probability averaging.")
    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="The member alone on the ensemble's held-out frames (AUROC, AUPR).",
    )


class EnsembleOf(BaseModel):
    """What an ``ensemble`` model averages, and how (``vigil_shared.vision.score_ensemble``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["probability", "score"]
    members: tuple[EnsembleMember, ...] = Field(min_length=2)


class ModelManifest(BaseModel):
    """Stored next to the safetensors artifact; the registry row mirrors its key fields.

    A ``classify`` artifact holds the network's state dict (``ensemble_size`` > 1: members'
    tensors prefixed ``member<i>.``); a ``one_class`` artifact holds what its scorer needs; an
    ``ensemble`` of registry models names its members in ``ensemble`` and its artifact holds
    their score normalisations (it has no weights or preprocessing of its own).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    schema_: Literal["vigil.model-manifest.v1"] = Field(default=MANIFEST_SCHEMA, alias="schema")
    model_id: str
    name: str
    task: Literal["one_class", "classify", "ensemble"]
    architecture: str
    backbone_weights: WeightsProvenance | None = Field(
        default=None, description="Required except for an ensemble (its members pin theirs)."
    )
    preprocessing: Preprocessing | None = Field(
        default=None, description="Required except for an ensemble (its members have theirs)."
    )
    threshold: float = Field(ge=0, description="Anomaly score above which a frame is an event.")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="Extra named thresholds (e.g. per class)."
    )
    classes: tuple[str, ...] = ()
    normal_classes: tuple[str, ...] = ()
    head: Literal["linear", "mlp"] | None = Field(default=None, description="classify only.")
    head_hidden: int | None = None
    ensemble_size: int = Field(default=1, ge=1)
    k: int | None = Field(default=None, ge=1, description="kNN neighbours (one_class).")
    artifact_key: str
    artifact_sha256: Sha256 = Field(pattern=r"^[0-9a-f]{64}$")
    dataset_name: str | None = None
    dataset_version: str | None = None
    dataset_prefix: str | None = Field(default=None, description="Legacy prefix datasets.")
    dataset_sha256: Sha256 = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="The dataset version (content hash) the model was trained on.",
    )
    n_images: int
    parent_model_id: str | None = None
    spec: JobSpec
    metrics: dict[str, float]
    evaluation: Evaluation | None = None
    comparison: ProductionComparison | None = None
    study: StudySummary | None = None
    ensemble: EnsembleOf | None = Field(default=None, description="task ensemble only.")
    code_version: str
    created_at: AwareDatetime

    @model_validator(mode="before")
    @classmethod
    def _stored_one_class_defaults(cls, data: Any) -> Any:
        """A manifest keeps its model's method: one written before a one_class spec had
        ``fusion`` is read with the fusion it was fitted with, not today's default."""
        if isinstance(data, dict) and "spec" in data:
            return data | {"spec": with_stored_defaults(data["spec"])}
        return data

    @model_validator(mode="after")
    def _complete_for_its_task(self) -> ModelManifest:
        if (self.task == "ensemble") != (self.ensemble is not None):
            raise ValueError("an ensemble manifest names its members in ensemble; others do not")
        if self.task != "ensemble" and (
            self.backbone_weights is None or self.preprocessing is None
        ):
            raise ValueError(f"a {self.task} manifest needs backbone_weights and preprocessing")
        return self

    def own_preprocessing(self) -> Preprocessing:
        """How frames are prepared for this model's network; an ensemble's members each have
        their own, so asking an ensemble is a programming error."""
        if self.preprocessing is None:
            raise TypeError(f"model {self.model_id} is an ensemble: its members preprocess")
        return self.preprocessing

    def own_weights(self) -> WeightsProvenance:
        """The pretrained weights this model's network started from (not for an ensemble)."""
        if self.backbone_weights is None:
            raise TypeError(f"model {self.model_id} is an ensemble: its members pin weights")
        return self.backbone_weights

    @classmethod
    def manifest_key(cls, model_id: str) -> str:
        return f"models/{model_id}/manifest.json"

    @classmethod
    def artifact_key_for(cls, model_id: str) -> str:
        return f"models/{model_id}/model.safetensors"


def ensemble_problem(method: str, members: Sequence[ModelManifest]) -> str | None:
    """Why these registry models cannot be averaged with ``method`` (None when they can): the
    API asks before queueing a ``registry_models`` job and the trainer again when it starts."""
    ids = [m.model_id for m in members]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        return f"fusion.model_ids names {', '.join(twice)} more than once"
    nested = [m.model_id for m in members if m.task == "ensemble"]
    if nested:
        return f"{', '.join(nested)}: an ensemble cannot be a member; name its members instead"
    if method != "probability":
        return None
    others = [f"{m.model_id} is {m.task}" for m in members if m.task != "classify"]
    if others:
        return f"probability averaging needs classify models ({', '.join(others)}); use score"
    if len({(m.classes, m.normal_classes) for m in members}) > 1:
        found = "; ".join(
            f"{m.model_id}: {list(m.classes)} normal {list(m.normal_classes)}" for m in members
        )
        return f"probability averaging needs one class list and normal classes ({found}); use score"
    return None


def site_backbone_problem(manifest: ModelManifest) -> str | None:
    """Why ``manifest``'s model cannot give a one_class model its features, or None."""
    name = f"model {manifest.model_id}"
    if manifest.task != "classify":
        return (
            f"{name} is a {manifest.task} model; backbone_model_id names a classify model "
            "fine-tuned from efficientnet_lite0 on the site's footage"
        )
    if manifest.architecture != "efficientnet_lite0":
        return (
            f"{name} is a {manifest.architecture} classifier; one_class patch features come "
            "from efficientnet_lite0: fine-tune that architecture for a backbone"
        )
    if manifest.ensemble_size > 1:
        return f"{name} is an ensemble of {manifest.ensemble_size} networks; name one network"
    return None
