"""The evaluation gate: may this model be promoted in this scope? ``check`` answers and stores
the answer (``gate_decisions``) with the policy, the evaluation and every rule's figures.

The policy is the scope's own (a camera id) or the global one (``*``); a scope with neither has
no gate and every check passes, so a deployment that sets no policy promotes as before. The
evidence is the model's latest evaluation that covers the scope (its dataset's cameras include
the camera; any for ``*``), made against the model now in production there: an evaluation
against a model that has since been replaced compares with the wrong thing, and fails.

``check`` is what a promotion calls (``routes/model_stages.py``) and what an automatic
promotion calls; it commits the decision, so a refused promotion still leaves its record.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil_api.domain.gate_rules import Rules, checks
from vigil_shared.db.models import Evaluation, GateDecision, GatePolicy, ModelAssignmentRow
from vigil_shared.schemas.assignments import GLOBAL_SCOPE

GATE_ACTOR = "gate"


@dataclass(frozen=True)
class Policy:
    scope: str
    rules: Rules


def policy_for(*, session: Session, scope: str) -> Policy | None:
    """The scope's own policy, else the global one, else None (no gate)."""
    for candidate in dict.fromkeys([scope, GLOBAL_SCOPE]):
        row = session.get(GatePolicy, candidate)
        if row is not None:
            rules = Rules(
                auroc_tolerance=row.auroc_tolerance,
                recall_tolerance=row.recall_tolerance,
                false_alarms_per_hour_tolerance=row.false_alarms_per_hour_tolerance,
            )
            return Policy(scope=row.scope, rules=rules)
    return None


def production_of(*, session: Session, scope: str) -> str | None:
    """The model now in production for the scope (a camera without its own: the global one)."""
    for candidate in dict.fromkeys([scope, GLOBAL_SCOPE]):
        row = session.get(ModelAssignmentRow, candidate)
        if row is not None and row.production_model_id is not None:
            return row.production_model_id
    return None


def latest_evaluation(*, session: Session, model_id: str, scope: str) -> Evaluation | None:
    query = select(Evaluation).where(Evaluation.model_id == model_id)
    if scope != GLOBAL_SCOPE:
        query = query.where(Evaluation.camera_ids.contains([scope]))
    return session.scalars(query.order_by(Evaluation.created_at.desc()).limit(1)).first()


def check(*, session: Session, model_id: str, scope: str, actor: str = GATE_ACTOR) -> GateDecision:
    """Run the gate for ``model_id`` in ``scope`` (a camera id or ``*``), store and return the
    decision (committed)."""
    policy = policy_for(session=session, scope=scope)
    production = production_of(session=session, scope=scope)
    decision = GateDecision(
        model_id=model_id, scope=scope, production_model_id=production, actor=actor[:128]
    )
    if policy is None:
        _decide(decision, passed=True, summary=f"no gate policy for {scope} or global: no gate")
    else:
        decision.policy = {"scope": policy.scope, **policy.rules.to_json()}
        _judge(session=session, decision=decision, policy=policy, production=production)
    session.add(decision)
    session.commit()
    return decision


def _judge(
    *, session: Session, decision: GateDecision, policy: Policy, production: str | None
) -> None:
    evaluation = latest_evaluation(
        session=session, model_id=decision.model_id, scope=decision.scope
    )
    if evaluation is None:
        where = "global" if decision.scope == GLOBAL_SCOPE else f"camera {decision.scope}"
        summary = (
            f"no evaluation of {decision.model_id} covers {where}: retrain it from the camera "
            "(POST /api/v1/cameras/{id}/retrain) or train it on that camera's footage first"
        )
        _decide(decision, passed=False, summary=summary)
        return
    decision.evaluation_id = evaluation.id
    if production is not None and production == decision.model_id:
        _decide(decision, passed=True, summary=f"{production} is already in production here")
        return
    if evaluation.production_model_id != production:
        compared = evaluation.production_model_id or "no model"
        summary = (
            f"evaluation {evaluation.id} compared with {compared} but "
            f"{production or 'no model'} is in production now: evaluate again (retrain)"
        )
        _decide(decision, passed=False, summary=summary)
        return
    results = checks(
        policy.rules, candidate=evaluation.metrics, production=evaluation.production_metrics
    )
    decision.checks = [c.to_json() for c in results]
    failed = [c for c in results if not c.passed]
    summary = "; ".join(c.why for c in failed) if failed else "every rule of the policy passed"
    _decide(decision, passed=not failed, summary=summary)


def _decide(decision: GateDecision, *, passed: bool, summary: str) -> None:
    decision.passed = passed
    decision.summary = summary
    if decision.checks is None:
        decision.checks = []
