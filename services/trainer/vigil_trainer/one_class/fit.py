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
from vigil_shared.event_lifecycle import (
    CALIBRATED_CLOSE_AFTER,
    CALIBRATED_CLOSE_RATIO,
    CALIBRATED_OPEN_K,
    CALIBRATED_OPEN_N,
    LifecycleSettings,
)
from vigil_shared.motion_units import MOTION_FPS
from vigil_shared.schemas.manifests import Preprocessing, WeightsProvenance
from vigil_shared.schemas.one_class import SCENE_LEFT_OUT, OneClassSpec
from vigil_shared.vision.backbones import Backbone, load_efficientnet_lite0
from vigil_shared.vision.one_class_model import (
    APPEARANCE_NORM,
    FUSION_GAINS,
    MOTION_CELL_SCALE,
    MOTION_NORM,
    PROJECTION_COMPONENTS,
    PROJECTION_MEAN,
    OneClassScorer,
    over_time,
)
from vigil_shared.vision.patches import PatchFeatureExtractor
from vigil_shared.vision.preprocess import to_batch
from vigil_shared.vision.score_metrics import (
    auroc,
    average_precision,
    best_f1_threshold,
    normal_threshold,
)
from vigil_shared.vision.site_backbone import backbone_tensors
from vigil_trainer.cancel import JobCancelled
from vigil_trainer.one_class.alarm_rate import fit_alarm_rate
from vigil_trainer.one_class.banks import appearance_bank, scene_bank
from vigil_trainer.one_class.calibrate import (
    ClipScores,
    motion_cell_scale,
    quantile_metrics,
    stream_norm,
    stream_tails,
    with_cell_scale,
)
from vigil_trainer.one_class.clips import (
    Clip,
    calibration_folds,
    capture_times,
    clips_of,
    frame_rate,
    read_frames,
    segmented,
    split_clips,
)
from vigil_trainer.one_class.label_fusion import fit_fusion_gains

Progress = Callable[[dict[str, Any]], None]

# Labeled anomalies set the threshold (best F1) instead of the held-out normals' (``target_fpr``)
# only from this many frames in this many groups, and only under that frame rule: a spec with a
# ``false_alarms_per_hour`` target keeps it (the operator's alarm budget), labels or not; the
# labels then weigh the streams (``label_fusion``) and the F1-best threshold and the rate it
# would raise are reported beside it. On Ped2 (``bench.ped2_labels``, partial window) the
# F1-best cut of ten labeled clips sat at 3.56 where the target put 7.30: 73 false alarms an hour.
# The F1-best threshold sits just under the lowest-scoring positives it keeps, or just above the
# highest-scoring rejected frame it clears, so with a handful of frames (a retrain's reviewed peaks,
# one per event) one frame moves it anywhere, in either direction: 8 reviewed peaks on Ped2 dropped
# it from 2.23 to 1.39 (false alarms), and with the footage trimmed, one rejected alarm's frames
# raised it from 2.00 to 3.39 (event recall 0.75 -> 0.58). The held-out normals are thousands of
# frames; from 50 labeled frames of 10 events, one frame is at most 2% of the recall it trades and
# one event 10%. Rejected alarms below that count still teach the model: their frames go into its
# banks.
MIN_LABELED_FRAMES = 50
MIN_LABELED_GROUPS = 10


def enough_labels(validation: Sequence[Clip]) -> bool:
    """Whether the labeled anomalies are evidence enough to weigh the streams and, under the
    frame rule, to set the threshold (see above)."""
    groups = [c for c in validation if not c.is_normal]
    frames = sum(sum(c.abnormal) for c in groups)
    return frames >= MIN_LABELED_FRAMES and len(groups) >= MIN_LABELED_GROUPS


@dataclass(frozen=True)
class OneClassFit:
    """A fitted model: the artifact's tensors and what the registry records beside them."""

    spec: OneClassSpec
    """The spec as fitted: the one asked for, less a scene stream left out for want of groups
    (``SCENE_LEFT_OUT`` in the metrics)."""
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
    lifecycle: LifecycleSettings | None = None,
) -> OneClassFit:
    """Fit on ``dataset`` (normal clips; clips with labeled anomalies validate only), with
    ``backbone``'s features (ImageNet Lite0 when None); the false-alarm rate counts events as
    ``lifecycle`` (inference's debounce; its defaults when None) raises them."""
    torch.manual_seed(spec.seed)
    run = _Run(s3, bucket, device, batch_size, progress, should_stop)
    clips = clips_of(dataset)
    fps = frame_rate(clips, spec.footage_fps)
    given = {clip.group for clip in clips}
    clips = segmented(clips, fps=fps, segment_s=spec.segment_s)
    split = split_clips(clips, holdout_fraction=spec.holdout_fraction, seed=spec.seed)
    folds = calibration_folds(split, folds=spec.cross_fit_folds, seed=spec.seed)
    normal_groups = sum(len(fold.scored) for fold in folds)
    counts = {
        "n_bank_clips": len(split.fit),
        "n_holdout_clips": normal_groups,
        "cross_fit_folds": len(folds) - 1,
        "n_clips_segmented": len(given - {clip.group for clip in clips}),
    }
    if spec.scene is not None and normal_groups < spec.scene.min_groups:
        counts[SCENE_LEFT_OUT] = spec.scene.min_groups
        spec = spec.model_copy(update={"scene": None})
    backbone = backbone or load_efficientnet_lite0()
    prep = backbone.preprocessing.model_copy(update={"image_size": spec.image_size})
    banks = _Banks(run, spec, fps, None, {})
    if spec.appearance.weight > 0:
        extractor = PatchFeatureExtractor(backbone.module, spec.appearance.stages)
        extractor = extractor.to(device).eval()
        patches = _bank_patches(run, spec, prep, extractor, split.fit)
        banks = _Banks(run, spec, fps, extractor, patches)
    model_tensors = banks.fitted(split.fit, step=(0, len(folds)))
    calibration = _Calibration(run, sum(len(c.items) for c in split.validation))
    calibration.total += sum(len(c.items) for fold in folds for c in fold.scored)
    holdout: list[ClipScores] = []
    for index, fold in enumerate(folds):
        tensors = model_tensors if index == 0 else banks.fitted(fold.bank, step=(index, len(folds)))
        holdout += calibration.score(banks.scorer(tensors, prep), fold.scored)
    scorer = banks.scorer(model_tensors, prep)
    validation = calibration.score(scorer, split.validation)
    if spec.motion is not None and spec.motion.weight > 0 and spec.motion.rescaled:
        scale = motion_cell_scale(holdout, per_row=spec.motion.per_row)
        scorer.tensors[MOTION_CELL_SCALE] = scale
        holdout = with_cell_scale(holdout, scale, spec.motion)
        validation = with_cell_scale(validation, scale, spec.motion)
    fit = _calibrate(
        spec=spec,
        scorer=scorer,
        holdout=holdout,
        validation=validation,
        fps=fps,
        lifecycle=lifecycle or LifecycleSettings(),
        counts=counts,
        labels_enough=enough_labels(split.validation),
    )
    fitted = OneClassFit(
        spec=spec,
        tensors=fit.tensors,
        threshold=fit.threshold,
        metrics=fit.metrics,
        provenance=backbone.provenance,
        preprocessing=prep,
        dataset_sha256=dataset.version,
        n_images=len(dataset.items),
    )
    if spec.backbone_model_id is None:
        return fitted
    # The fine-tuned body goes into the artifact: inference must not need the model it came from.
    return replace(fitted, tensors=fitted.tensors | backbone_tensors(backbone.module))


@dataclass
class _Banks:
    """Banks fitted from the bank clips' patch features, for the model or for one fold."""

    run: _Run
    spec: OneClassSpec
    footage_fps: float  # the dataset's frame rate (``clips.frame_rate``)
    extractor: PatchFeatureExtractor | None
    features: dict[str, tuple[torch.Tensor, torch.Tensor]]  # group -> (patches, frame means)

    def fitted(self, clips: tuple[Clip, ...], *, step: tuple[int, int]) -> dict[str, torch.Tensor]:
        """The appearance (and scene) banks of ``clips``; none without the appearance stream."""
        if self.extractor is None:
            return {}
        started = time.monotonic()
        self.run.progress({"stage": "coreset", "step": step[0], "total": step[1], "eta_s": None})
        patches = torch.cat([self.features[c.group][0] for c in clips])
        tensors = appearance_bank(
            patches,
            spec=self.spec.appearance,
            seed=self.spec.seed,
            device=self.run.device,
            should_stop=self.run.should_stop,
        )
        if self.spec.scene_embedding and self.spec.calibrated:
            frames = torch.cat([self.features[c.group][1] for c in clips])
            tensors |= scene_bank(frames, tensors, spec=self.spec)
        self.run.step("coreset", step[0] + 1, step[1], started)
        return tensors

    def scorer(self, tensors: dict[str, torch.Tensor], prep: Preprocessing) -> OneClassScorer:
        """A scorer with ``tensors``' banks and neutral statistics (calibration sets them)."""
        if self.extractor is not None and PROJECTION_MEAN in tensors:
            self.extractor.set_projection(tensors[PROJECTION_MEAN], tensors[PROJECTION_COMPONENTS])
        neutral = torch.tensor([0.0, 1.0])
        return OneClassScorer(
            spec=self.spec,
            preprocessing=prep,
            threshold=0.0,
            extractor=self.extractor,
            tensors=tensors | {APPEARANCE_NORM: neutral, MOTION_NORM: neutral},
            device=self.run.device,
            footage_fps=self.footage_fps,
        )


@torch.inference_mode()
def _bank_patches(
    run: _Run,
    spec: OneClassSpec,
    prep: Preprocessing,
    extractor: PatchFeatureExtractor,
    clips: tuple[Clip, ...],
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """By group, raw patch features (before any projection), float16 on the CPU, of the bank
    frames; and each bank frame's mean patch feature (float32), for the scene stream."""
    stride = spec.appearance.frame_stride
    total = sum(len(c.items[::stride]) for c in clips)
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    done, started = 0, time.monotonic()
    for clip in clips:
        sampled = Clip(clip.group, clip.items[::stride], clip.abnormal[::stride])
        patches: list[torch.Tensor] = []
        pooled: list[torch.Tensor] = []
        for frames in read_frames(run.s3, run.bucket, sampled, chunk=run.batch_size):
            batch = to_batch([f.to(run.device) for f in frames], prep)
            features = extractor.raw(batch)
            patches.append(features.permute(0, 2, 3, 1).reshape(-1, features.shape[1]).half().cpu())
            pooled.append(features.float().mean(dim=(2, 3)).cpu())
            done += len(frames)
            run.step("features", done, total, started)
        out[clip.group] = (torch.cat(patches), torch.cat(pooled))
    return out


@dataclass
class _Calibration:
    """Scores clips in frame order, as the worker would (with their capture times where every
    frame has one), counting frames for the progress."""

    run: _Run
    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)

    def score(self, scorer: OneClassScorer, clips: tuple[Clip, ...]) -> list[ClipScores]:
        results = []
        run = self.run
        for clip in clips:
            raw, start, times = [], 0, capture_times(clip)
            for frames in read_frames(run.s3, run.bucket, clip, chunk=run.batch_size):
                chunk_times = None if times is None else times[start : start + len(frames)]
                raw.append(scorer.stream_scores([clip.group] * len(frames), frames, chunk_times))
                start += len(frames)
                self.done += len(frames)
                run.step("calibrate", self.done, self.total, self.started)
            scorer.forget(clip.group)
            results.append(ClipScores(raw=raw, abnormal=torch.tensor(clip.abnormal)))
        return results


def _fused(scorer: OneClassScorer, clip: ClipScores) -> torch.Tensor:
    scores = torch.cat([scorer.fuse(chunk)[0] for chunk in clip.raw])
    return over_time(scorer.spec, scores)


@dataclass(frozen=True)
class _Calibrated:
    tensors: dict[str, torch.Tensor]
    threshold: float
    metrics: dict[str, float]


def _calibrate(
    *,
    spec: OneClassSpec,
    scorer: OneClassScorer,
    holdout: list[ClipScores],
    validation: list[ClipScores],
    fps: float,
    lifecycle: LifecycleSettings,
    counts: dict[str, int],
    labels_enough: bool,
) -> _Calibrated:
    """Normalisation, tails and threshold from the normal groups' out-of-fold scores; with
    enough labels, the streams' gains (``label_fusion``) before the threshold they move."""
    for name, attribute in ((APPEARANCE_NORM, "appearance"), (MOTION_NORM, "motion")):
        values = torch.cat([getattr(c, attribute) for clip in holdout for c in clip.raw])
        scorer.tensors[name] = stream_norm(values)
    scorer.tensors |= stream_tails(spec, [c for clip in holdout for c in clip.raw])
    fusion = None
    if labels_enough:  # the gains move the fused normal scores: before the threshold
        fusion = fit_fusion_gains(scorer, holdout + validation, seed=spec.seed)
    if fusion is not None and fusion.gains is not None:
        scorer.tensors[FUSION_GAINS] = fusion.gains
    normal_clips = [_fused(scorer, clip) for clip in holdout]
    normal_scores = torch.cat(normal_clips)
    rate = fit_alarm_rate(normal_clips, fps=fps, settings=lifecycle)
    if spec.false_alarms_per_hour is not None:
        threshold = rate.threshold_for(spec.false_alarms_per_hour)
    else:
        threshold = normal_threshold(normal_scores, target_fpr=spec.target_fpr)
    metrics = quantile_metrics(normal_scores, threshold)
    metrics |= {name: float(value) for name, value in counts.items()}
    metrics |= {"threshold_from_labels": 0.0, "fusion_from_labels": 0.0, "fps": fps}
    motion = scorer.motion
    if motion is not None and motion.units_fps is not None and motion.spec.weight > 0:
        metrics[MOTION_FPS] = motion.units_fps  # what the API checks a camera's rate against
    # The debounce the false-alarm rate counts events with (inference's, when the worker's
    # VIGIL_INFERENCE_EVENT_* match the trainer's).
    metrics |= {
        CALIBRATED_OPEN_K: lifecycle.open_k,
        CALIBRATED_OPEN_N: lifecycle.open_n,
        CALIBRATED_CLOSE_AFTER: lifecycle.close_after,
        CALIBRATED_CLOSE_RATIO: lifecycle.close_ratio,
    }
    metrics |= fusion.metrics if fusion is not None else {}
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
            metrics["expected_false_alarms_per_hour_labeled"] = rate.per_hour(labeled)
            metrics["threshold_normal"] = threshold
            if labels_enough and spec.false_alarms_per_hour is None:
                threshold = labeled
                metrics["threshold_from_labels"] = 1.0
                metrics["holdout_fpr"] = float((normal_scores > threshold).double().mean())
    metrics |= rate.metrics(threshold)
    metrics |= {
        "appearance_norm_mean": float(scorer.tensors[APPEARANCE_NORM][0]),
        "motion_norm_mean": float(scorer.tensors[MOTION_NORM][0]),
    }
    return _Calibrated(tensors=scorer.to_tensors(), threshold=threshold, metrics=metrics)
