"""Several cameras' event reports pooled (``bench.pool_events``): the events add up as if every
clip had been replayed in one report, and reports counted differently are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from bench.pool_events import PoolError, main, pooled
from vigil_shared.vision.event_metrics import evaluate

FPS = 10.0
LIFECYCLE = {"open_k": 3, "open_n": 5}


def _clip(n: int, hot: tuple[int, int] | None, abnormal: tuple[int, int] | None) -> tuple[Any, Any]:
    scores, labels = torch.zeros(n), torch.zeros(n, dtype=torch.bool)
    if hot is not None:
        scores[hot[0] : hot[1] + 1] = 2.0
    if abnormal is not None:
        labels[abnormal[0] : abnormal[1] + 1] = True
    return scores, labels


CAMERAS = {
    "hall": {"a": _clip(80, (20, 40), (18, 40)), "b": _clip(60, (5, 12), None)},
    "square": {"c": _clip(100, (70, 90), (50, 90)), "d": _clip(50, None, (10, 20))},
}


def _report(camera: str, clips: dict[str, tuple[Any, Any]], **extra: Any) -> dict[str, Any]:
    scores = {name: s for name, (s, _) in clips.items()}
    labels = {name: y for name, (_, y) in clips.items()}
    figures = evaluate(scores, labels, threshold=1.0, fps=FPS)
    return {
        "footage": {"name": camera},
        "fps": FPS,
        "lifecycle": LIFECYCLE,
        "grace_s": 1.0,
        "causal_window": 9,
        "models": {"default": {"threshold": 1.0, "test": figures}},
    } | extra


def test_pooled_events_equal_one_replay_of_every_clip() -> None:
    reports = {camera: _report(camera, clips) for camera, clips in CAMERAS.items()}
    result = pooled(reports)["models"]["default"]["test"]
    everything = {name: clip for clips in CAMERAS.values() for name, clip in clips.items()}
    together = _report("all", everything)["models"]["default"]["test"]["events"]
    assert result["events"] == pytest.approx(together)
    assert result["events"]["intervals"] == 3 and result["events"]["false_alarms"] == 1
    by_camera = result["frames"]["by_camera"]
    assert result["frames"]["mean_auroc"] == pytest.approx(
        (by_camera["hall"]["auroc"] + by_camera["square"]["auroc"]) / 2
    )


def test_reports_counted_differently_are_refused(tmp_path: Path) -> None:
    other = _report("square", CAMERAS["square"], lifecycle={"open_k": 2, "open_n": 3})
    with pytest.raises(PoolError, match="lifecycle"):
        pooled({"hall": _report("hall", CAMERAS["hall"]), "square": other})
    renamed = _report("square", CAMERAS["square"])
    renamed["models"]["default"]["labeled"] = renamed["models"]["default"].pop("test")
    with pytest.raises(PoolError, match="no clip set for default"):
        pooled({"hall": _report("hall", CAMERAS["hall"]), "square": renamed})
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="not a readable report"):
        main([str(bad)])
    good = tmp_path / "hall.json"
    good.write_text(json.dumps(_report("hall", CAMERAS["hall"])))
    (tmp_path / "again").mkdir()
    twin = tmp_path / "again" / "hall.json"
    twin.write_text(good.read_text())
    with pytest.raises(SystemExit, match="two reports are named hall"):
        main([str(good), str(twin)])
    out = tmp_path / "pooled.json"
    assert main([str(good), "--json", str(out)])["models"]["default"]["test"]["events"]["found"]
    assert json.loads(out.read_text())["cameras"] == {"hall": {"footage": "hall", "fps": FPS}}
