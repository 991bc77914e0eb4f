"""The model manifest: what an artifact is, where it came from and how to use it."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vigil_shared.schemas.jobs import JobSpec

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


class ModelManifest(BaseModel):
    """Stored next to the safetensors artifact; the registry row mirrors its key fields.

    A ``classify`` artifact holds the network's state dict (``ensemble_size`` > 1: members'
    tensors prefixed ``member<i>.``); a ``one_class`` artifact holds what its scorer needs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    schema_: Literal["vigil.model-manifest.v1"] = Field(default=MANIFEST_SCHEMA, alias="schema")
    model_id: str
    name: str
    task: Literal["one_class", "classify"]
    architecture: str
    backbone_weights: WeightsProvenance
    preprocessing: Preprocessing
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
    code_version: str
    created_at: AwareDatetime

    @classmethod
    def manifest_key(cls, model_id: str) -> str:
        return f"models/{model_id}/manifest.json"

    @classmethod
    def artifact_key_for(cls, model_id: str) -> str:
        return f"models/{model_id}/model.safetensors"
