"""What the API says a model's false-alarm estimate assumes: the debounce its events were
counted with, so an operator who changes inference's sees the estimate no longer holds."""

from __future__ import annotations

import pytest

from vigil_api.routes.registry import ExpectedAlarms

FIT = {
    "expected_false_alarms_per_hour": 1.0,
    "expected_false_alarms_per_hour_low": 0.1,
    "expected_false_alarms_per_hour_high": 8.2,
    "calibration_hours": 0.07,
}


def test_the_estimate_names_the_debounce_it_was_counted_with() -> None:
    shown = ExpectedAlarms.from_metrics(FIT | {"lifecycle_open_k": 3.0, "lifecycle_open_n": 5.0})
    assert shown is not None
    assert (shown.per_hour, shown.high, shown.open_k, shown.open_n) == (1.0, 8.2, 3, 5)
    assert shown.close_after is None  # fitted before the close was recorded
    closing = {"lifecycle_open_k": 3.0, "lifecycle_open_n": 5.0, "lifecycle_close_after": 20.0}
    assert ExpectedAlarms.from_metrics(FIT | closing).close_after == 20  # type: ignore[union-attr]
    older = ExpectedAlarms.from_metrics(FIT)  # fitted before the debounce was recorded
    assert older is not None and older.open_k is None and older.open_n is None
    assert ExpectedAlarms.from_metrics({"auroc": 0.9}) is None
    assert older.calibration_hours == pytest.approx(0.07)
