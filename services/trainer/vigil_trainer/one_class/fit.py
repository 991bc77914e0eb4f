"""Fits a one_class model: appearance bank from the bank clips, calibration on held-out clips.

Stages (each reported through ``progress``, each checking ``should_stop`` between batches):
``features`` (patch features of every ``frame_stride``-th frame of the bank clips), ``coreset``
(site projection and greedy coreset), ``calibrate`` (score the held-out and labeled clips in
frame order through the same ``OneClassScorer`` the inference service uses, then normalise and
set the threshold). Motion needs no fitting beyond its normalisation: what it measures (flow
magnitude that persists) is compared with the site's held-out normal frames.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from minio import Minio
from safetensors.torch import save as save_safetensors

from vigil_shared.datasets import DatasetManifest
from vigil_shared.schemas.manifests import Preprocessing, WeightsProvenance
from vigil_shared.schemas.one_class import OneClassSpec
from vigil_shared.vision.backbones import Backbone, load_efficientnet_lite0
from vigil_shared.vision.one_class_model import (
    APPEARANCE_NORM,
    MOTION_NORM,
    PROJECTION_COMPONENTS,
    PROJECTION_MEAN,
    OneClassScorer,
)
from vigil_shared.vision.patches import PatchFeatureExtractor
from vigil_shared.vision.preprocess import to_batch
from vigil_shared.vision.score_metrics import (
    auroc,
    average_precision,
    best_f1_threshold,
    normal_threshold,
    trailing_mean,
)
from vigil_shared.vision.site_backbone import backbone_tensors
from vigil_trainer.cancel import JobCancelled
from vigil_trainer.one_class.banks import appearance_bank, scene_bank
from vigil_trainer.one_class.calibrate import (
    ClipScores,
    quantile_metrics,
    stream_norm,
    stream_tails,
)
from vigil_trainer.one_class.clips import Clip, ClipSplit, clips_of, read_frames, split_clips

Progress = Callable[[dict[str, Any]], None]

# Labeled anomalies set the threshold (best F1) instead of the held-out normals' (``target_fpr``)
# only from this many frames in this many groups. The F1-best threshold sits just under the
# lowest-scoring positives it keeps, or just above the highest-scoring rejected frame it clears,
# so with a handful of frames (a retrain's reviewed peaks, one per event) one frame moves it
# anywhere, in either direction: 8 reviewed peaks on Ped2 dropped it from 2.23 to 1.39 (false
# alarms), and with the footage trimmed, one rejected alarm's frames raised it from 2.00 to 3.39
# (event recall 0.75 -> 0.58). The held-out normals are thousands of frames; from 50 labeled
# frames of 10 events, one frame is at most 2% of the recall it trades and one event 10%.
# Rejected alarms below that count still teach the model: their frames go into its banks.
MIN_LABELED_FRAMES = 50
MIN_LABELED_GROUPS = 10


def enough_labels(validation: Sequence[Clip]) -> bool:
    """Whether the labeled anomalies are evidence enough to set the threshold (see above)."""
    groups = [c for c in validation if not c.is_normal]
    frames = sum(sum(c.abnormal) for c in groups)
    return frames >= MIN_LABELED_FRAMES and len(groups) >= MIN_LABELED_GROUPS


@dataclass(frozen=True)
class OneClassFit:
    """A fitted model: the artifact's tensors and what the registry records beside them."""

    tensors: dict[str, torch.Tensor]
    threshold: float
    metrics: dict[str, float]
    provenance: WeightsProvenance
    preprocessing: Preprocessing
    dataset_sha256: str
    n_images: int

    @property
    def artifact(self) -> bytes:
        """The safetensors bytes (never pickle) stored as ``model.safetensors``."""
        return io.BytesIO(save_safetensors(self.tensors)).getvalue()


@dataclass
class _Run:
    """What the stages share: the job's callbacks and a clock for ETAs."""

    s3: Minio
    bucket: str
    device: str
    batch_size: int
    progress: Progress
    should_stop: Callable[[], bool]
    started: float = field(default_factory=time.monotonic)

    def step(self, stage: str, done: int, total: int, stage_started: float) -> None:
        if self.should_stop():
            raise JobCancelled(f"cancelled during {stage}")
        elapsed = time.monotonic() - stage_started
        eta = elapsed / done * (total - done) if done else None
        self.progress({"stage": stage, "step": done, "total": total, "eta_s": eta})


def fit_one_class(
    *,
    s3: Minio,
    bucket: str,
    spec: OneClassSpec,
    dataset: DatasetManifest,
    device: str,
    batch_size: int,
    progress: Progress,
    should_stop: Callable[[], bool],
    backbone: Backbone | None = None,
) -> OneClassFit:
    """Fit on ``dataset`` (normal clips; clips with labeled anomalies validate only), with
    ``backbone``'s features (ImageNet Lite0 when None)."""
    torch.manual_seed(spec.seed)
    run = _Run(s3, bucket, device, batch_size, progress, should_stop)
    split = split_clips(clips_of(dataset), holdout_fraction=spec.holdout_fraction, seed=spec.seed)
    backbone = backbone or load_efficientnet_lite0()
    prep = backbone.preprocessing.model_copy(update={"image_size": spec.image_size})
    extractor = None
    tensors: dict[str, torch.Tensor] = {}
    if spec.appearance.weight > 0:
        extractor = PatchFeatureExtractor(backbone.module, spec.appearance.stages)
        extractor = extractor.to(device).eval()
        patches, frames = _bank_patches(run, spec, prep, extractor, split.fit)
        run.progress({"stage": "coreset", "step": 0, "total": 1, "eta_s": None})
        tensors |= appearance_bank(
            patches, spec=spec.appearance, seed=spec.seed, device=device, should_stop=should_stop
        )
        run.step("coreset", 1, 1, time.monotonic())
        if PROJECTION_MEAN in tensors:
            extractor.set_projection(tensors[PROJECTION_MEAN], tensors[PROJECTION_COMPONENTS])
        if spec.scene_embedding and spec.fusion == "calibrated_max":
            tensors |= scene_bank(frames, tensors, spec=spec)
    scorer = OneClassScorer(
        spec=spec,
        preprocessing=prep,
        threshold=0.0,
        extractor=extractor,
        tensors=tensors
        | {APPEARANCE_NORM: torch.tensor([0.0, 1.0]), MOTION_NORM: torch.tensor([0.0, 1.0])},
        device=device,
    )
    fit = _calibrate(run, spec, scorer, split, dataset, backbone.provenance, prep)
    if spec.backbone_model_id is None:
        return fit
    # The fine-tuned body goes into the artifact: inference must not need the model it came from.
    return replace(fit, tensors=fit.tensors | backbone_tensors(backbone.module))


@torch.inference_mode()
def _bank_patches(
    run: _Run,
    spec: OneClassSpec,
    prep: Preprocessing,
    extractor: PatchFeatureExtractor,
    clips: tuple[Clip, ...],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw patch features (before any projection), float16 on the CPU, of the bank frames; and
    each bank frame's mean patch feature (float32), for the scene stream."""
    stride = spec.appearance.frame_stride
    total = sum(len(c.items[::stride]) for c in clips)
    out: list[torch.Tensor] = []
    pooled: list[torch.Tensor] = []
    done, started = 0, time.monotonic()
    for clip in clips:
        sampled = Clip(clip.group, clip.items[::stride], clip.abnormal[::stride])
        for frames in read_frames(run.s3, run.bucket, sampled, chunk=run.batch_size):
            batch = to_batch([f.to(run.device) for f in frames], prep)
            features = extractor.raw(batch)
            out.append(features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]).half().cpu())
            pooled.append(features.float().mean(dim=(2, 3)).cpu())
            done += len(frames)
            run.step("features", done, total, started)
    return torch.cat(out), torch.cat(pooled)


def _score_clips(run: _Run, scorer: OneClassScorer, clips: tuple[Clip, ...]) -> list[ClipScores]:
    total = sum(len(c.items) for c in clips)
    done, started = 0, time.monotonic()
    results = []
    for clip in clips:
        raw = []
        for frames in read_frames(run.s3, run.bucket, clip, chunk=run.batch_size):
            raw.append(scorer.stream_scores([clip.group] * len(frames), frames))
            done += len(frames)
            run.step("calibrate", done, total, started)
        scorer.forget(clip.group)
        results.append(ClipScores(raw=raw, abnormal=torch.tensor(clip.abnormal)))
    return results


def _fused(scorer: OneClassScorer, clip: ClipScores) -> torch.Tensor:
    scores = torch.cat([scorer.fuse(chunk)[0] for chunk in clip.raw])
    return trailing_mean(scores, scorer.spec.smoothing_window)


def _calibrate(
    run: _Run,
    spec: OneClassSpec,
    scorer: OneClassScorer,
    split: ClipSplit,
    dataset: DatasetManifest,
    provenance: WeightsProvenance,
    prep: Preprocessing,
) -> OneClassFit:
    holdout = _score_clips(run, scorer, split.holdout)
    validation = _score_clips(run, scorer, split.validation)
    for name, attribute in ((APPEARANCE_NORM, "appearance"), (MOTION_NORM, "motion")):
        values = torch.cat([getattr(c, attribute) for clip in holdout for c in clip.raw])
        scorer.tensors[name] = stream_norm(values)
    scorer.tensors |= stream_tails(spec, [c for clip in holdout for c in clip.raw])
    normal_scores = torch.cat([_fused(scorer, clip) for clip in holdout])
    threshold = normal_threshold(normal_scores, target_fpr=spec.target_fpr)
    metrics = quantile_metrics(normal_scores, threshold)
    metrics |= {
        "n_bank_clips": float(len(split.fit)),
        "n_holdout_clips": float(len(split.holdout)),
        "threshold_from_labels": 0.0,
    }
    if validation:
        val_scores = torch.cat([normal_scores, *(_fused(scorer, c) for c in validation)])
        abnormal = torch.cat(
            [torch.zeros(normal_scores.numel(), dtype=torch.bool)]
            + [c.abnormal for c in validation]
        )
        metrics["validation_auroc"] = auroc(val_scores, abnormal)
        metrics["validation_aupr"] = average_precision(val_scores, abnormal)
        metrics["n_labeled_abnormal"] = float(abnormal.sum())
        if bool(abnormal.any()):
            labeled, f1 = best_f1_threshold(val_scores, abnormal)
            metrics |= {"validation_f1": f1, "threshold_labeled": labeled}
            metrics["threshold_normal"] = threshold
            if enough_labels(split.validation):
                threshold = labeled
                metrics["threshold_from_labels"] = 1.0
                metrics["holdout_fpr"] = float((normal_scores > threshold).double().mean())
    metrics |= {
        "appearance_norm_mean": float(scorer.tensors[APPEARANCE_NORM][0]),
        "motion_norm_mean": float(scorer.tensors[MOTION_NORM][0]),
    }
    return OneClassFit(
        tensors=scorer.to_tensors(),
        threshold=threshold,
        metrics=metrics,
        provenance=provenance,
        preprocessing=prep,
        dataset_sha256=dataset.version,
        n_images=len(dataset.items),
    )
