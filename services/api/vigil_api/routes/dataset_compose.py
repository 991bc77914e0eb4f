"""``POST /api/v1/datasets/{name}/versions/compose``: one version made of several
(``domain/dataset_compose.py``); ownership as for any new version (``domain/dataset_versions``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from vigil_api.core import problems
from vigil_api.core.auth import OperatorDep
from vigil_api.core.build_slots import BUILD_SLOT
from vigil_api.core.deps import ClientsDep, SessionDep
from vigil_api.domain.dataset_compose import Part, compose_images
from vigil_api.domain.dataset_sources import SourceError
from vigil_api.routes.datasets import SAME_CONTENT, CreatedVersion, NamePath, store
from vigil_shared.datasets import DatasetError, DatasetName, DatasetVersion, Label
from vigil_shared.schemas.inputs import SafeText

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


class PartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: DatasetName
    version: DatasetVersion | None = Field(
        default=None, description="Default: the latest version this key sees."
    )
    label: Label | None = Field(
        default=None, description="Give every image of this part this label (e.g. normal)."
    )


class ComposeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "parts": [
                        {"dataset": "lobby-footage"},
                        {"dataset": "lobby-false-alarms", "label": "normal"},
                        {"dataset": "lobby-confirmed"},
                    ],
                    "description": "lobby: footage, false alarms as normal, confirmed events",
                }
            ]
        },
    )

    parts: list[PartIn] = Field(min_length=1, max_length=50)
    description: SafeText = ""


@router.post(
    "/{name}/versions/compose",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedVersion,
    responses=SAME_CONTENT | problems.responses(403, 422, 503),
    dependencies=[BUILD_SLOT],
)
def version_composed(
    name: NamePath,
    body: ComposeIn,
    request: Request,
    response: Response,
    session: SessionDep,
    clients: ClientsDep,
    principal: OperatorDep,
) -> CreatedVersion:
    """A version made of the parts' images, each keeping its group (a part may relabel its
    images); the same parts give the same version. A part this key cannot see is a 422."""
    try:
        images = compose_images(
            session=session,
            s3=clients.s3,
            bucket=clients.settings.common.s3.datasets_bucket,
            principal=principal,
            parts=[Part(dataset=p.dataset, version=p.version, label=p.label) for p in body.parts],
            max_frames=clients.settings.dataset_max_frames,
        )
    except (SourceError, DatasetError) as exc:
        raise problems.invalid_field(("body", "parts"), str(exc)) from exc
    return store(
        request,
        response,
        principal,
        session=session,
        clients=clients,
        name=name,
        images=images,
        source="composed",
        description=body.description,
    )
