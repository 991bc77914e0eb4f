"""UCSD Ped2 one_class benchmark: fit on the training clips, score every test frame in order.

The real path end to end: the training clips are decoded with PyAV, stored as a versioned
dataset in S3 (``write_dataset``; JPEG q95, group = clip, sequence = frame index), fitted with
``fit_one_class``, the artifact goes through safetensors bytes into
``OneClassFrameModel.from_artifact``, and the test JPEGs are scored clip by clip through
``score_frames``, the call the inference service makes. The model's per-stream scores are
recorded on the way, so the same run also reports each stream alone; and it fits and scores the
baseline too (unless ``--no-baseline``): a plain kNN over pretrained Lite0 stride-8+16 patch
features (the appearance stream with no whitening), no motion, no adaptation.

    set -a; . .stack/env; set +a
    python -m bench.ped2_one_class --json bench/results/ped2-one-class-cpu.json
    python -m bench.ped2_one_class --quick          # 3 train clips, 2 test clips (CI, tests)

Frame-level AUROC pools all test frames; "causal" smooths each clip's scores with a trailing
window (what a live camera can do), "centred" with a centred one (offline only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors

from bench.footage import Footage
from bench.report import emit
from vigil_shared.datasets import DatasetManifest, DatasetRef, NewImage, write_dataset
from vigil_shared.event_lifecycle import LifecycleSettings
from vigil_shared.schemas.frames import utc_now
from vigil_shared.schemas.manifests import ModelManifest
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.settings import S3Settings
from vigil_shared.storage import ensure_buckets, make_s3_client, sha256_hex
from vigil_shared.vision.backbones import Backbone
from vigil_shared.vision.one_class_model import OneClassFrameModel, StreamScores
from vigil_shared.vision.preprocess import decode
from vigil_shared.vision.score_metrics import auroc, average_precision, trailing_mean
from vigil_trainer.one_class import OneClassFit, fit_one_class
from vigil_trainer.one_class.architecture import one_class_architecture

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # the clips' capture times, when they get some
QUICK_TRAIN = ("Train001", "Train002", "Train003")
QUICK_TEST = ("Test001", "Test002")
SMOOTHING = 9


def ped2_root() -> Path:
    return Footage.ped2().root


def clip_images(footage: Footage, clip: str, *, fps: float | None = None) -> list[NewImage]:
    """A training recording as JPEG dataset items: group = clip, sequence = the frame's index
    in the recording; taken at ``fps`` with capture times, or every frame without them."""
    return [
        NewImage(
            data=frame.jpeg(),
            extension=".jpg",
            group=clip,
            sequence=frame.index,
            camera_id=footage.slug,
            source_name=f"{clip}/{frame.index + 1:03d}.jpg",
            captured_at=None if fps is None else EPOCH + dt.timedelta(seconds=frame.seconds),
        )
        for frame in footage.frames("train", clip, fps)
    ]


def training_dataset(
    footage: Footage, clips: Sequence[str], s3_settings: S3Settings, *, fps: float | None = None
) -> DatasetManifest:
    """The footage's training ``clips`` as a dataset (JPEG q95, group = clip, sequence = the
    frame's index in its recording): every frame without capture times (an uploaded archive,
    taken at the spec's ``footage_fps``, else 10 fps), or taken at ``fps`` with each frame's
    capture time, as footage recorded from a camera carries."""
    client = make_s3_client(s3_settings)
    ensure_buckets(client, s3_settings)
    camera = footage.slug
    images = [image for clip in clips for image in clip_images(footage, clip, fps=fps)]
    name = (
        f"{camera}-train"
        if len(clips) == len(footage.train)
        else (f"{camera}-train-{len(clips)}clips")
    )
    return write_dataset(
        client,
        s3_settings.datasets_bucket,
        name=name if fps is None else f"{name}-{fps:g}fps",
        images=images,
        source="import",
        description=f"{footage.description}: training clips (normal only), bench"
        + ("" if fps is None else f", at {fps:g} fps with capture times"),
    )


def fit_manifest(fit: OneClassFit, model_id: str) -> ModelManifest:
    """The manifest a registry would store for ``fit`` (its artifact at the registry's key)."""
    spec = fit.spec
    return ModelManifest(
        model_id=model_id,
        name=spec.name,
        task="one_class",
        architecture=one_class_architecture(spec),
        backbone_weights=fit.provenance,
        preprocessing=fit.preprocessing,
        threshold=max(0.0, fit.threshold),
        k=spec.k,
        artifact_key=ModelManifest.artifact_key_for(model_id),
        artifact_sha256=sha256_hex(fit.artifact),
        dataset_sha256=fit.dataset_sha256,
        n_images=fit.n_images,
        spec=spec,
        metrics=fit.metrics,
        code_version="bench",
        created_at=utc_now(),
    )


def frame_model(fit: OneClassFit, device: str) -> OneClassFrameModel:
    """The registry path without the registry: safetensors bytes, a manifest, from_artifact."""
    manifest = fit_manifest(fit, "bench-ped2")
    return RecordingModel.from_artifact(manifest, load_safetensors(fit.artifact), device)


@dataclass
class ClipResult:
    scores: list[float] = field(default_factory=list)
    appearance: list[float] = field(default_factory=list)
    motion: list[float] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)


class RecordingModel(OneClassFrameModel):
    """The inference model, noting each batch's raw stream scores for the ablation figures."""

    last: StreamScores | None = None

    def stream_scores(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> StreamScores:
        self.last = super().stream_scores(camera_ids, images, times)
        return self.last


def score_clip(
    model: RecordingModel, paths: list[Path], batch: int, *, times: Sequence[float] | None = None
) -> ClipResult:
    """A clip's frames scored in order, as one camera; ``times``: each frame's capture time in
    seconds, as a live camera's frames carry (none: the model assumes its fit's rate)."""
    result = ClipResult()
    camera = paths[0].parent.name
    for start in range(0, len(paths), batch):
        images = [decode(p.read_bytes()) for p in paths[start : start + batch]]
        part = None if times is None else list(times[start : start + batch])
        scores = model.score_frames([camera] * len(images), images, part)
        assert model.last is not None
        result.scores += [s.score for s in scores]
        result.labels += [s.label for s in scores]
        result.appearance += model.last.appearance.tolist()
        result.motion += model.last.motion.tolist()
    model.forget(camera)
    return result


def centred_mean(scores: torch.Tensor, window: int) -> torch.Tensor:
    padded = torch.nn.functional.pad(scores[None, None], (window // 2, window // 2), "replicate")
    return torch.nn.functional.avg_pool1d(padded, window, stride=1)[0, 0]


def clip_frames(root: Path, clip: str) -> list[Path]:
    """A test clip's frame files (``test_frames/<clip>/001.jpg``, ...) in order."""
    return sorted((root / "test_frames" / clip).glob("*.jpg"))


def labeled_test_images(root: Path, clip: str) -> list[NewImage]:
    """A test clip as a labeled dataset group: each frame ``abnormal`` or ``normal``."""
    paths = clip_frames(root, clip)
    abnormal = labels_of(root, clip, len(paths))
    return [
        NewImage(
            data=path.read_bytes(),
            extension=".jpg",
            group=clip,
            label="abnormal" if bool(abnormal[index]) else "normal",
            sequence=index,
            camera_id="ped2",
            source_name=f"{clip}/{path.name}",
        )
        for index, path in enumerate(paths)
    ]


def labels_of(root: Path, clip: str, n: int) -> torch.Tensor:
    ranges = json.loads((root / "labels.json").read_text())["clips"][clip]["abnormal"]
    abnormal = torch.zeros(n, dtype=torch.bool)
    for first, last in ranges:
        abnormal[first - 1 : last] = True
    return abnormal


def figures(per_clip: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Pooled AUROC raw, causal- and centred-smoothed, AUPR, and per-clip AUROC."""
    clips = sorted(per_clip)
    y = torch.cat([labels[c] for c in clips])
    raw = torch.cat([per_clip[c] for c in clips])
    causal = torch.cat([trailing_mean(per_clip[c], SMOOTHING) for c in clips])
    centred = torch.cat([centred_mean(per_clip[c], SMOOTHING) for c in clips])
    per = {c: auroc(per_clip[c], labels[c]) for c in clips}
    return {
        "auroc": auroc(raw, y),
        f"auroc_causal{SMOOTHING}": auroc(causal, y),
        f"auroc_centred{SMOOTHING}": auroc(centred, y),
        "aupr": average_precision(raw, y),
        "per_clip_auroc": {c: v for c, v in per.items() if v == v},  # NaN: one class only
    }


def stream(results: dict[str, ClipResult], name: str) -> dict[str, torch.Tensor]:
    """A stream's raw scores per clip; a clip's first frame (no flow yet) takes the second's."""
    out = {}
    for clip, result in results.items():
        values = torch.tensor(getattr(result, name), dtype=torch.float64)
        missing = torch.isnan(values)
        if bool(missing.any()) and not bool(missing.all()):
            values[missing] = values[~missing][0]
        out[clip] = values
    return out


def fit_and_score(
    args: argparse.Namespace,
    root: Path,
    spec: OneClassSpec,
    dataset: DatasetManifest,
    test: Sequence[str],
    backbone: Backbone | None = None,
    lifecycle: LifecycleSettings | None = None,
) -> tuple[OneClassFit, float, dict[str, ClipResult], float]:
    """Fit ``spec`` on ``dataset`` (with ``backbone``'s features, ImageNet's when None; its
    threshold for events through ``lifecycle``, inference's default when None), then score
    every test clip in order; with the timings."""
    s3_settings = S3Settings()
    started = time.perf_counter()
    fit = fit_one_class(
        s3=make_s3_client(s3_settings),
        bucket=s3_settings.datasets_bucket,
        spec=spec,
        dataset=dataset,
        device=args.device,
        batch_size=args.batch_size,
        progress=lambda p: print(json.dumps(p), flush=True) if args.verbose else None,
        should_stop=lambda: False,
        backbone=backbone,
        lifecycle=lifecycle,
    )
    fit_s = time.perf_counter() - started
    model = frame_model(fit, args.device)
    assert isinstance(model, RecordingModel)
    started = time.perf_counter()
    results = {clip: score_clip(model, clip_frames(root, clip), args.batch_size) for clip in test}
    return fit, fit_s, results, time.perf_counter() - started


def baseline_of(spec: OneClassSpec) -> OneClassSpec:
    """The baseline of ``spec``: its appearance stream alone, unwhitened (a plain patch kNN);
    one weighted stream is its z-score, in the kNN distance's order."""
    appearance = spec.appearance.model_copy(update={"weight": 1.0, "whiten_dim": 0})
    update = {"appearance": appearance, "motion": None, "scene": None, "fusion": "weighted"}
    return spec.model_copy(update=update)


def other_motion(
    args: argparse.Namespace,
    root: Path,
    spec: OneClassSpec,
    dataset: DatasetManifest,
    test: Sequence[str],
    labels: dict[str, torch.Tensor],
) -> dict[str, Any]:
    """The same fit and test with the other flow method, for comparing them in one run."""
    assert spec.motion is not None
    method = "lucas_kanade" if spec.motion.method == "farneback" else "farneback"
    other = spec.model_copy(update={"motion": spec.motion.model_copy(update={"method": method})})
    _, fit_s, results, score_s = fit_and_score(args, root, other, dataset, test)
    return {
        "method": method,
        "fit_s": round(fit_s, 1),
        "score_frames_per_s": round(sum(len(r.scores) for r in results.values()) / score_s, 2),
        "model": figures(
            {c: torch.tensor(r.scores, dtype=torch.float64) for c, r in results.items()}, labels
        ),
        "motion_only": figures(stream(results, "motion"), labels),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)
    root = ped2_root()
    train = QUICK_TRAIN if args.quick else tuple(f"Train{i:03d}" for i in range(1, 17))
    test = QUICK_TEST if args.quick else tuple(f"Test{i:03d}" for i in range(1, 13))
    s3_settings = S3Settings()
    started = time.perf_counter()
    dataset = training_dataset(Footage.ped2(), train, s3_settings)
    dataset_s = time.perf_counter() - started
    overrides = json.loads(args.spec) if args.spec else {}
    spec = OneClassSpec.model_validate(
        {"name": "ped2", "dataset": DatasetRef(name=dataset.name, version=dataset.version)}
        | overrides
    )
    fit, fit_s, results, score_s = fit_and_score(args, root, spec, dataset, test)
    n_frames = sum(len(r.scores) for r in results.values())
    labels = {clip: labels_of(root, clip, len(r.scores)) for clip, r in results.items()}
    model_scores = {c: torch.tensor(r.scores, dtype=torch.float64) for c, r in results.items()}
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, torch threads {args.threads}",
        "device": args.device,
        "quick": args.quick,
        "spec": spec.model_dump(mode="json", exclude={"dataset"}),
        "dataset": {"name": dataset.name, "version": dataset.version, "frames": len(dataset.items)},
        "dataset_write_s": round(dataset_s, 1),
        "fit_s": round(fit_s, 1),
        "fit_metrics": fit.metrics,
        "threshold": fit.threshold,
        "score_frames_per_s": round(n_frames / score_s, 2),
        "test_frames": n_frames,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "model": figures(model_scores, labels),
        "motion_only": figures(stream(results, "motion"), labels),
        "appearance_only": figures(stream(results, "appearance"), labels),
    }
    if not args.no_baseline:
        baseline = baseline_of(spec)
        _, base_fit_s, base_results, _ = fit_and_score(args, root, baseline, dataset, test)
        base_scores = {
            c: torch.tensor(r.scores, dtype=torch.float64) for c, r in base_results.items()
        }
        report["baseline"] = {
            "what": "pretrained Lite0 stride-8+16 patch kNN, coreset bank, no motion, no whitening",
            "fit_s": round(base_fit_s, 1),
            **figures(base_scores, labels),
        }
    if args.compare_motion:
        report["other_motion"] = other_motion(args, root, spec, dataset, test, labels)
    if args.scores:
        per_frame = {
            c: {"model": r.scores, "appearance": r.appearance, "motion": r.motion}
            for c, r in results.items()
        }
        args.scores.write_text(json.dumps(per_frame))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 train clips, 2 test clips")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    parser.add_argument("--spec", help="JSON overrides of the OneClassSpec, e.g. '{\"k\": 3}'")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument("--verbose", action="store_true", help="print fit progress")
    parser.add_argument("--scores", type=Path, help="write per-frame stream scores here")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the appearance-only baseline fit"
    )
    parser.add_argument(
        "--compare-motion",
        action="store_true",
        help="fit and score again with the other flow method (farneback / lucas_kanade)",
    )
    args = parser.parse_args()
    emit(run(args), args.json)


if __name__ == "__main__":
    main()
