"""The spec of a ``one_class`` job: a normality model fitted from normal frames only."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

DatasetPrefix = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$", max_length=255)
]


class DatasetRef(BaseModel):
    """Images under a prefix of the datasets bucket (``.jpg``/``.jpeg``/``.png``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    prefix: DatasetPrefix = Field(examples=["ped2/train/"])
    max_images: int = Field(default=2000, ge=1, le=100_000)


class OneClassSpec(BaseModel):
    """Fit a normality model from normal frames only: a bank of pretrained-backbone features."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=128, examples=["ped2-walkway"])
    task: Literal["one_class"] = "one_class"
    backbone: Literal["efficientnet_lite0"] = "efficientnet_lite0"
    dataset: DatasetRef
    image_size: int = Field(default=224, ge=64, le=640, multiple_of=32)
    bank_size: int = Field(default=1024, ge=8, le=65_536)
    k: int = Field(default=3, ge=1, le=64, description="Neighbours averaged in the kNN score.")
    target_fpr: float = Field(
        default=0.01, gt=0, lt=0.5, description="False-positive rate the threshold aims at."
    )
    seed: int = 0
