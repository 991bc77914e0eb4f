"""Hyperparameter search spaces: a distribution per dotted field path of a job spec.

A path such as ``hyper.lr`` or ``augment.rotation.degrees`` is checked against the spec's model
classes (optional sub-models included), and every value a distribution can produce (its bounds,
its choices) is validated against that field's own type and constraints, so a study never
samples a value the spec would refuse.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from pydantic.fields import FieldInfo

from vigil_shared.schemas.inputs import INT64_MAX, Int64, SafeName

Choice = SafeName | Int64 | float | bool


class FloatDistribution(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["float"] = "float"
    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatDistribution:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log distribution needs low > 0")
        return self

    def endpoints(self) -> list[Choice]:
        return [self.low, self.high]


class IntDistribution(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["int"] = "int"
    low: Int64
    high: Int64
    step: int = Field(default=1, ge=1, le=INT64_MAX)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> IntDistribution:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and (self.low <= 0 or self.step != 1):
            raise ValueError("a log distribution needs low > 0 and step 1")
        return self

    def endpoints(self) -> list[Choice]:
        return [self.low, self.high]


class CategoricalDistribution(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["categorical"] = "categorical"
    choices: tuple[Choice, ...] = Field(min_length=2)

    def endpoints(self) -> list[Choice]:
        return list(self.choices)


Distribution = Annotated[
    FloatDistribution | IntDistribution | CategoricalDistribution, Field(discriminator="type")
]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``X``, ``X | None``), if there is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def resolve_field(model: type[BaseModel], path: str) -> FieldInfo:
    """The field a dotted path names; ``KeyError`` with the fields that do exist otherwise."""
    current: type[BaseModel] = model
    parts = path.split(".")
    for depth, name in enumerate(parts):
        fields = current.model_fields
        if name not in fields:
            where = ".".join(parts[:depth]) or "the spec"
            raise KeyError(f"{where} has no field {name!r}; it has: {', '.join(sorted(fields))}")
        info = fields[name]
        if depth == len(parts) - 1:
            return info
        inner = _model_in(info.annotation)
        if inner is None:
            raise KeyError(f"{'.'.join(parts[: depth + 1])} is a value, not a section")
        current = inner
    raise KeyError(path)  # unreachable: a path has at least one part


def leaf_adapter(info: FieldInfo) -> TypeAdapter[Any]:
    """Validates one value exactly as the field would (type plus ge/le/pattern metadata)."""
    annotation: Any = info.annotation
    if info.metadata:
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


# Trials must differ only in how they learn: the data, the starting weights (one architecture
# resolved once per job), the classes counted as normal and the held-out split stay fixed, or
# the best trial's validation score would not be comparable with the others'.
NOT_SEARCHABLE = frozenset(
    {
        "search",
        "fusion",
        "dataset",
        "name",
        "task",
        "architecture",
        "weights_sha256",
        "parent_model_id",
        "normal_classes",
        "validation",
    }
)


def check_space(model: type[BaseModel], space: dict[str, Any]) -> None:
    """Raise ``ValueError`` naming each bad path: unknown, not searchable, or out of range."""
    problems: list[str] = []
    for path, distribution in space.items():
        if path.split(".")[0] in NOT_SEARCHABLE:
            problems.append(
                f"search.space[{path!r}]: this field cannot be searched "
                "(it fixes what is learned, from what weights, or how it is judged)"
            )
            continue
        try:
            info = resolve_field(model, path)
        except KeyError as exc:
            problems.append(f"search.space[{path!r}]: {exc.args[0]}")
            continue
        if _model_in(info.annotation) is not None:
            problems.append(f"search.space[{path!r}]: a section; name one of its fields")
            continue
        adapter = leaf_adapter(info)
        for value in distribution.endpoints():
            try:
                adapter.validate_python(value, strict=isinstance(value, bool))
            except ValidationError as exc:
                reason = exc.errors()[0]["msg"]
                problems.append(f"search.space[{path!r}]: {value!r} is not allowed: {reason}")
    if problems:
        raise ValueError("; ".join(problems))
