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


class ModelManifest(BaseModel):
    """Stored next to the safetensors artifact; the registry row mirrors its key fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", protected_namespaces=())

    schema_: Literal["vigil.model-manifest.v1"] = Field(default=MANIFEST_SCHEMA, alias="schema")
    model_id: str
    name: str
    task: Literal["one_class"]
    architecture: str
    backbone_weights: WeightsProvenance
    preprocessing: Preprocessing
    threshold: float = Field(ge=0)
    k: int = Field(ge=1)
    artifact_key: str
    artifact_sha256: Sha256 = Field(pattern=r"^[0-9a-f]{64}$")
    dataset_prefix: str
    dataset_sha256: Sha256 = Field(
        pattern=r"^[0-9a-f]{64}$", description="Hash over the sorted (key, sha256) of its images."
    )
    n_images: int
    spec: JobSpec
    metrics: dict[str, float]
    code_version: str
    created_at: AwareDatetime

    @classmethod
    def manifest_key(cls, model_id: str) -> str:
        return f"models/{model_id}/manifest.json"

    @classmethod
    def artifact_key_for(cls, model_id: str) -> str:
        return f"models/{model_id}/model.safetensors"
