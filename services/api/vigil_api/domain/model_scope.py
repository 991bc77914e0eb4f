"""Which registry models a camera-scoped key sees: those that touch its cameras.

A model is visible to a key scoped to cameras C when

- it was trained on a dataset version the key sees (every image from C: which includes every
  version C's own keys built), or
- it is the production or shadow model of one of C's cameras, or the global default (which
  scores every camera without a model of its own, so C's cameras' events already name it).

Unscoped keys see every model. Anything else is answered as if it did not exist (404), as
cameras and events are: a scoped key cannot learn which other models the fleet has, nor fetch
their artifacts (whose memory banks are made of other cameras' footage).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, func, or_, select, true
from sqlalchemy.orm import Session

from vigil_api.core.problems import invalid_field
from vigil_api.core.security import Principal
from vigil_shared.db.models import Dataset, Model, ModelAssignmentRow
from vigil_shared.schemas.assignments import GLOBAL_SCOPE


def visible_models(principal: Principal) -> ColumnElement[bool]:
    """A condition on ``Model`` that holds for the models ``principal`` sees."""
    if principal.camera_ids is None:
        return true()
    cameras = sorted(principal.camera_ids)
    assigned = ModelAssignmentRow.scope.in_([*cameras, GLOBAL_SCOPE])
    production = select(ModelAssignmentRow.production_model_id).where(assigned)
    shadow = select(ModelAssignmentRow.shadow_model_id).where(assigned)
    trained_on_its_cameras = exists().where(
        Dataset.name == Model.dataset_name,
        Dataset.version == func.coalesce(Model.dataset_version, Model.dataset_sha256),
        func.cardinality(Dataset.camera_ids) > 0,
        Dataset.camera_ids.contained_by(cameras),
    )
    return or_(Model.id.in_(production), Model.id.in_(shadow), trained_on_its_cameras)


def visible_model(*, session: Session, principal: Principal, model_id: str) -> Model | None:
    """The model, or None when it does not exist or this key may not see it."""
    return session.scalars(
        select(Model).where(Model.id == model_id, visible_models(principal))
    ).one_or_none()


def check_visible_model(
    *, session: Session, principal: Principal, model_id: str | None, location: tuple[str, ...]
) -> None:
    """A 422 at ``location`` for a model this key may not name (as one that does not exist)."""
    if (
        model_id is not None
        and visible_model(session=session, principal=principal, model_id=model_id) is None
    ):
        raise invalid_field(location, f"model {model_id} does not exist")
