"""The one_class inferencer: appearance and motion memory banks scored by nearest neighbours.

It implements ``FrameModel`` for the inference service and needs no training code: the banks,
the site projection and the normalisation statistics come from the artifact (safetensors), the
knobs from the manifest's spec. Per camera it keeps the previous frame (grayscale, flow size)
and its last few cell-motion maps (a few hundred floats each) for motion, and its last few
scores for the trailing smoothing (or evidence) window; nothing else grows.

Each stream gives a frame score: appearance (kNN distance of each patch to the coreset bank of
normal patches; a map, its top cells' mean the score), motion (optical-flow magnitude per grid
cell that persisted over the last few frames; likewise), and the whole-frame scene stream (the
frame's mean patch feature's kNN distance to the normal frames', and the frame's mean motion,
judged too high and too low). ``one_class_fusion`` combines them by the spec's ``fusion``, with
the held-out normal statistics the artifact stores.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from vigil_shared.schemas.manifests import ModelManifest, Preprocessing
from vigil_shared.schemas.one_class import MotionSpec, OneClassSpec
from vigil_shared.vision import one_class_fusion
from vigil_shared.vision.backbones import load_efficientnet_lite0
from vigil_shared.vision.device import helper_pool
from vigil_shared.vision.efficientnet_lite import fused_for_inference
from vigil_shared.vision.motion_pace import context_frames as pace_context
from vigil_shared.vision.motion_stream import MotionStream
from vigil_shared.vision.one_class_fusion import Stream
from vigil_shared.vision.patches import PatchFeatureExtractor
from vigil_shared.vision.preprocess import to_batch
from vigil_shared.vision.score_metrics import accumulated_evidence, trailing_mean
from vigil_shared.vision.scoring import FrameScore
from vigil_shared.vision.site_backbone import BACKBONE_PREFIX, stored_backbone

APPEARANCE_BANK = "appearance.bank"
PROJECTION_MEAN = "appearance.projection_mean"
PROJECTION_COMPONENTS = "appearance.projection_components"
APPEARANCE_NORM = "appearance.norm"
MOTION_NORM = "motion.norm"
MOTION_CELL_SCALE = "motion.cell_scale"
SCENE_BANK = "scene.bank"
APPEARANCE_TAIL = "appearance.tail"
MOTION_TAIL = "motion.tail"
SCENE_TAIL = "scene.tail"
ACTIVITY_TAIL = "activity.tail"
FUSION_GAINS = "fusion.gains"
"""Optional: a calibrated fusion's per-stream gains, ``calibrated_tails`` order; absent, all 1."""
_QUERY_CHUNK = 16_384
_CPU_CHUNK_DISTANCES = 1 << 19


class ArtifactError(ValueError):
    """An artifact that does not match its manifest (missing tensors, wrong shapes)."""


@dataclass
class StreamScores:
    """Raw (unnormalised) per-stream results for a batch; motion rows are NaN without flow."""

    appearance: torch.Tensor  # (N,), NaN when the stream is off
    appearance_map: torch.Tensor | None  # (N, h, w)
    motion: torch.Tensor  # (N,), NaN for a camera's first frame or when the stream is off
    motion_map: torch.Tensor | None  # (N, rows, cols)
    scene: torch.Tensor  # (N,) the frame's mean patch feature's kNN distance; NaN when off
    activity: torch.Tensor  # (N,) the frame's mean persistent motion; NaN like motion
    pooled: torch.Tensor | None = None  # (N, D) the frames' mean patch features (the fit's bank)


CAUSES = {
    APPEARANCE_TAIL: "appearance",
    MOTION_TAIL: "motion",
    SCENE_TAIL: "scene",
    ACTIVITY_TAIL: "activity",
}
"""A calibrated stream's name as a frame's label (``OneClassScorer.fuse_with_causes``): an
unusual look, unusual movement, a whole frame unlike the normal ones, overall motion far above
or below its normal range."""


def calibrated_tails(spec: OneClassSpec) -> tuple[str, ...]:
    """The tensors of the streams a calibrated fusion fuses (none for ``weighted``)."""
    if not spec.calibrated:
        return ()
    motion_on = spec.motion is not None and spec.motion.weight > 0
    names = (
        (APPEARANCE_TAIL, spec.appearance.weight > 0),
        (MOTION_TAIL, motion_on),
        (SCENE_TAIL, spec.scene_embedding),
        (ACTIVITY_TAIL, spec.scene_activity),
    )
    return tuple(name for name, on in names if on)


def per_cell_motion(
    motion: torch.Tensor, maps: torch.Tensor, scale: torch.Tensor, spec: MotionSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """Motion scores and maps with each cell in units of its own normal level (``scale``,
    (rows, cols)); a frame without motion yet keeps NaN."""
    scaled = maps / scale
    return torch.where(torch.isnan(motion), motion, topk_mean(scaled, spec.top_k)), scaled


def topk_mean(maps: torch.Tensor, k: int) -> torch.Tensor:
    flat = maps.flatten(1)
    return flat.topk(min(k, flat.shape[1]), dim=1).values.mean(dim=1)


def knn_distance(
    queries: torch.Tensor, bank: torch.Tensor, k: int, *, half: bool = False
) -> torch.Tensor:
    """Mean distance of each (M, D) query to its ``k`` nearest rows of the (B, D) bank: per
    chunk of queries one fused matrix product (``|b|^2 - 2 q.b``, then ``+ |q|^2``), whose
    chunk keeps the distances in cache on a CPU (``_chunk_rows``). With ``k == 1`` (the default
    spec) a row minimum, which is several times faster than ``topk`` on a CPU. ``half`` takes
    the product in float16 (summed in float32 on CUDA): half the bank's memory traffic; norms
    and the sum stay float32, so a distance moves by about 1e-3 of the norms
    (``OneClassScorer.half_bank`` says when it is used)."""
    k = min(k, bank.shape[0])
    bank32 = bank.float()
    bank_sq = bank32.pow(2).sum(dim=1)
    operand = bank32.half() if half else bank32
    out = []
    for chunk in torch.split(queries.float(), _chunk_rows(queries, bank)):
        if half:
            cross = (chunk.to(operand.dtype) @ operand.T).float()
            squared = bank_sq - 2.0 * cross
        else:
            squared = torch.addmm(bank_sq, chunk, operand.T, alpha=-2.0)
        squared += chunk.pow(2).sum(dim=1, keepdim=True)
        if k == 1:
            out.append(squared.amin(dim=1).clamp_min_(0).sqrt_())
        else:
            nearest = squared.topk(k, dim=1, largest=False).values
            out.append(nearest.clamp_min_(0).sqrt_().mean(dim=1))
    return torch.cat(out) if out else queries.new_empty(0)


def _chunk_rows(queries: torch.Tensor, bank: torch.Tensor) -> int:
    """Queries per product: on a CPU about 2 MiB of distances (they stay in cache for the
    minimum; 784 patches x 2048 at once were 6x slower per frame), on CUDA ``_QUERY_CHUNK``."""
    if queries.device.type == "cpu":
        return max(1, min(_QUERY_CHUNK, _CPU_CHUNK_DISTANCES // max(1, bank.shape[0])))
    return _QUERY_CHUNK


_T = TypeVar("_T")


def _inference(work: Callable[..., _T]) -> Callable[..., _T]:
    """``work`` under inference mode on whichever thread runs it (the mode is per thread)."""

    def run(*args: Any) -> _T:
        with torch.inference_mode():
            return work(*args)

    return run


class OneClassScorer:
    """Scores frames against normal appearance and motion; see the module docstring.

    The trainer uses it directly to calibrate (there is no manifest yet); the inference service
    gets the ``OneClassFrameModel`` built from a registry artifact.
    """

    def __init__(
        self,
        *,
        spec: OneClassSpec,
        preprocessing: Preprocessing,
        threshold: float,
        extractor: PatchFeatureExtractor | None,
        tensors: dict[str, torch.Tensor],
        device: str,
        half_bank: bool | None = None,
        footage_fps: float | None = None,
    ) -> None:
        """``footage_fps``: the frame rate of the footage the model is fitted on (its
        manifest's ``fps``); motion is judged in the units of ``motion_units_fps``."""
        self.spec = spec
        self.device = device
        # fp16 kNN products where they are fast (tensor cores) and have been checked to keep
        # the ranking (tests/unit/test_one_class_knn.py, and on CUDA tests marked gpu); float32
        # on a CPU, whose fp16 matrix products are slow.
        self.half_bank = device.startswith("cuda") if half_bank is None else half_bank
        self.preprocessing = preprocessing
        self.threshold = threshold
        self.extractor = extractor
        self.tensors = {name: t.to(device) for name, t in tensors.items()}
        self.motion = (
            MotionStream(
                spec.motion,
                device,
                units_fps=motion_units_fps(spec.motion, footage_fps),
                footage_fps=footage_fps,
            )
            if spec.motion is not None
            else None
        )
        self._recent: dict[str, deque[float]] = {}  # the smoothing window's last scores
        self._calibrated = calibrated_tails(spec)

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """The artifact: every bank and statistic, contiguous on the CPU, for safetensors."""
        return {name: t.detach().to("cpu").contiguous() for name, t in self.tensors.items()}

    # --- FrameModel ---------------------------------------------------------------------------

    @property
    def context_frames(self) -> int:
        """A score depends on the smoothing (or evidence) window's earlier scores
        (``history_frames - 1`` frames), and the first of those on its motion: the persistence
        window's maps, each flow from the frame before it (``persistence`` frames; more for a
        camera faster than the fit's footage, ``motion_pace``). Without motion, only the
        window."""
        motion = self.spec.motion
        stream = self.motion
        flow = (
            pace_context(motion.persistence, units_fps=stream.units_fps)
            if motion is not None and stream is not None and motion.weight > 0
            else 0
        )
        return history_frames(self.spec) - 1 + flow

    def score_frames(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> list[FrameScore]:
        if len(camera_ids) != len(images):
            raise ValueError(f"{len(camera_ids)} camera ids for {len(images)} images")
        if times is not None and len(times) != len(images):
            raise ValueError(f"{len(times)} capture times for {len(images)} images")
        if not images:
            return []
        raw = self.stream_scores(camera_ids, images, times)
        scores, heatmaps, causes = self.fuse_with_causes(raw)
        out = []
        for camera_id, score, heatmap, cause in zip(
            camera_ids, scores.tolist(), heatmaps, causes, strict=True
        ):
            smoothed = self.smooth(camera_id, score)
            out.append(
                FrameScore(score=smoothed, threshold=self.threshold, heatmap=heatmap, label=cause)
            )
        return out

    def forget(self, camera_id: str) -> None:
        self._recent.pop(camera_id, None)
        if self.motion is not None:
            self.motion.forget(camera_id)

    # --- streams ------------------------------------------------------------------------------

    @torch.inference_mode()
    def stream_scores(
        self,
        camera_ids: Sequence[str],
        images: Sequence[torch.Tensor],
        times: Sequence[float] | None = None,
    ) -> StreamScores:
        """Raw per-stream scores and maps; advances each camera's motion state."""
        n = len(images)
        nan = torch.full((n,), float("nan"))
        appearance, appearance_map, pooled = nan.clone(), None, None
        scene, activity = nan.clone(), nan.clone()
        stream = self.motion if self.motion is not None and self.motion.spec.weight > 0 else None
        saved = stream.save(camera_ids) if stream is not None else {}
        # Motion (Farneback on the CPU, or torch flow) and appearance (the backbone) share
        # nothing: the flow runs on a helper thread meanwhile, so one camera's batch keeps two
        # cores busy (both release the GIL). Should either fail, the cameras' motion is put back
        # as it was: the caller scores the batch again frame by frame.
        flows = (
            helper_pool("motion").submit(_inference(stream), camera_ids, images, times)
            if stream
            else None
        )
        motion, motion_map = nan.clone(), None
        try:
            if self.extractor is not None:
                appearance_map, pooled = self._appearance_maps(images)
                appearance = topk_mean(appearance_map, self.spec.appearance.top_k)
                if SCENE_BANK in self.tensors:
                    bank = self.tensors[SCENE_BANK]
                    scene = knn_distance(pooled, bank, self.spec.k).float().cpu()
            if flows is not None:
                motion, motion_map = flows.result()
        except BaseException:
            if stream is not None and flows is not None:
                futures.wait([flows])
                stream.restore(saved)
            raise
        if stream is not None and motion_map is not None:
            activity = torch.where(torch.isnan(motion), motion, motion_map.flatten(1).mean(1))
            if MOTION_CELL_SCALE in self.tensors:
                scale = self.tensors[MOTION_CELL_SCALE].cpu()
                motion, motion_map = per_cell_motion(motion, motion_map, scale, stream.spec)
        return StreamScores(appearance, appearance_map, motion, motion_map, scene, activity, pooled)

    def _appearance_maps(self, images: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, h, w) kNN distances of the patches, and the (N, D) mean patch of each frame."""
        assert self.extractor is not None
        batch = to_batch([image.to(self.device) for image in images], self.preprocessing)
        features = self.extractor(batch)
        n, dim, h, w = features.shape
        flat = features.permute(0, 2, 3, 1).reshape(-1, dim)
        bank = self.tensors[APPEARANCE_BANK]
        distances = knn_distance(flat, bank, self.spec.k, half=self.half_bank)
        return distances.reshape(n, h, w).float().cpu(), features.float().mean(dim=(2, 3))

    # --- fusion -------------------------------------------------------------------------------

    def fuse(self, raw: StreamScores) -> tuple[torch.Tensor, torch.Tensor]:
        """The frame scores and heatmaps of a batch, by the spec's fusion
        (``vigil_shared.vision.one_class_fusion``); both >= 0 (event messages carry scores
        >= 0, and a calm frame ends an event with its score)."""
        scores, heatmaps, _ = self.fuse_with_causes(raw)
        return scores, heatmaps

    def fuse_with_causes(
        self, raw: StreamScores
    ) -> tuple[torch.Tensor, torch.Tensor, list[str | None]]:
        """``fuse``, and per frame the stream it is most unusual in (``CAUSES``): an event's
        label, so an operator reads a covered lens (``scene``) apart from a runner
        (``motion``). None under ``weighted``, whose streams are not on one scale."""
        if self.spec.fusion == "weighted":
            scores, heatmaps = one_class_fusion.weighted(self._weighted_streams(raw))
            return scores, heatmaps, [None] * scores.shape[0]
        streams = self.calibrated_streams(raw)
        surprises = one_class_fusion.frame_surprises(streams)
        scores, heatmaps = one_class_fusion.calibrated(streams, self.spec.fusion, surprises)
        names = [CAUSES[tail] for tail in self._calibrated]
        leading = one_class_fusion.leading(*surprises)
        return scores, heatmaps, [None if i is None else names[i] for i in leading]

    def _weighted_streams(self, raw: StreamScores) -> list[Stream]:
        streams = []
        if raw.appearance_map is not None:
            norm = self.tensors[APPEARANCE_NORM].cpu()
            streams.append(
                Stream(raw.appearance, raw.appearance_map, self.spec.appearance.weight, norm)
            )
        if raw.motion_map is not None and self.spec.motion is not None:
            norm = self.tensors[MOTION_NORM].cpu()
            streams.append(Stream(raw.motion, raw.motion_map, self.spec.motion.weight, norm))
        return streams

    def calibrated_streams(self, raw: StreamScores) -> list[Stream]:
        """The streams a calibrated fusion combines, ``calibrated_tails`` order, with gains."""
        candidates = {
            APPEARANCE_TAIL: (raw.appearance, raw.appearance_map),
            MOTION_TAIL: (raw.motion, raw.motion_map),
            SCENE_TAIL: (raw.scene, None),
            ACTIVITY_TAIL: (raw.activity, None),
        }
        stored = self.tensors.get(FUSION_GAINS)
        gains = [1.0] * len(self._calibrated) if stored is None else stored.tolist()
        return [
            Stream(*candidates[name], tail=self.tensors[name].cpu(), gain=gain)
            for name, gain in zip(self._calibrated, gains, strict=True)
        ]

    def smooth(self, camera_id: str, score: float) -> float:
        """The frame's reported score from the camera's recent fused scores (``over_time``)."""
        window = history_frames(self.spec)
        if window == 1:
            return score
        recent = self._recent.setdefault(camera_id, deque(maxlen=window))
        recent.append(score)
        if self.spec.evidence is not None:
            return float(over_time(self.spec, torch.tensor(recent, dtype=torch.float64))[-1])
        return sum(recent) / len(recent)


def motion_units_fps(motion: MotionSpec, footage_fps: float | None) -> float | None:
    """The frame rate a model's motion is in (``motion_pace``): its ``reference_fps`` where
    set, else the rate of its footage (None: one frame a step)."""
    return motion.reference_fps if motion.reference_fps is not None else footage_fps


def history_frames(spec: OneClassSpec) -> int:
    """How many of a camera's fused scores (the frame's own included) its reported score uses."""
    evidence = spec.evidence.window if spec.evidence is not None else 1
    return max(spec.smoothing_window, evidence)


def over_time(spec: OneClassSpec, scores: torch.Tensor) -> torch.Tensor:
    """A camera's fused scores, in frame order, as the model reports them: a trailing mean
    (``smoothing_window``) or accumulated evidence (``evidence``); the fit calibrates on these."""
    if spec.evidence is not None:
        return accumulated_evidence(scores, spec.evidence.window, spec.evidence.drift)
    return trailing_mean(scores, spec.smoothing_window)


def check_tensors(spec: OneClassSpec, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse an artifact missing what the spec's streams need, with the names it lacks."""
    needed = []
    if spec.appearance.weight > 0:
        needed += [APPEARANCE_BANK, APPEARANCE_NORM]
        if spec.appearance.whiten_dim:
            needed += [PROJECTION_MEAN, PROJECTION_COMPONENTS]
    if spec.motion is not None and spec.motion.weight > 0:
        needed += [MOTION_NORM] + ([MOTION_CELL_SCALE] if spec.motion.rescaled else [])
    if spec.scene_embedding and spec.calibrated:
        needed += [SCENE_BANK]
    needed += calibrated_tails(spec)
    missing = [name for name in needed if name not in tensors]
    _check_gains(spec, tensors.get(FUSION_GAINS))
    if spec.backbone_model_id is not None and not any(
        k.startswith(BACKBONE_PREFIX) for k in tensors
    ):
        missing.append(f"{BACKBONE_PREFIX}* (the fine-tuned backbone)")
    if missing:
        raise ArtifactError(f"artifact lacks {', '.join(missing)}: refit the model")


def _check_gains(spec: OneClassSpec, gains: torch.Tensor | None) -> None:
    streams = len(calibrated_tails(spec))
    if gains is None:
        return
    if gains.shape != (streams,) or bool((gains < 0).any()) or not bool((gains > 0).any()):
        raise ArtifactError(
            f"{FUSION_GAINS} must be {streams} non-negative gains, not all 0, one per fused "
            f"stream; the artifact has {gains.tolist()}: refit the model"
        )


class OneClassFrameModel(OneClassScorer):
    """A registry one_class model: the ``FrameModel`` the inference service loads."""

    def __init__(self, *, manifest: ModelManifest, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.manifest = manifest

    @classmethod
    def from_artifact(
        cls, manifest: ModelManifest, tensors: dict[str, torch.Tensor], device: str
    ) -> OneClassFrameModel:
        """Build from a registry manifest and its safetensors; the backbone weights are loaded
        from their pinned source and must match the manifest's sha256."""
        spec = manifest.spec
        if not isinstance(spec, OneClassSpec):
            raise ArtifactError(f"model {manifest.model_id} is a {manifest.task} model")
        check_tensors(spec, tensors)
        extractor = build_extractor(
            spec, tensors, device, expect_sha256=manifest.own_weights().sha256
        )
        return cls(
            manifest=manifest,
            spec=spec,
            preprocessing=manifest.own_preprocessing(),
            threshold=manifest.threshold,
            extractor=extractor,
            tensors=tensors,
            device=device,
            footage_fps=manifest.metrics.get("fps"),
        )


def build_extractor(
    spec: OneClassSpec, tensors: dict[str, torch.Tensor], device: str, *, expect_sha256: str | None
) -> PatchFeatureExtractor | None:
    """The appearance extractor (None when the stream is off), with the site projection."""
    if spec.appearance.weight <= 0:
        return None
    module = stored_backbone(tensors)  # a site-fine-tuned body travels in the artifact
    if module is None:
        backbone = load_efficientnet_lite0()
        if expect_sha256 is not None and backbone.provenance.sha256 != expect_sha256:
            raise ArtifactError(
                f"the model was fitted on backbone weights {expect_sha256[:12]}..., this host has "
                f"{backbone.provenance.sha256[:12]}...: install the weights the manifest names"
            )
        module = backbone.module
    extractor = PatchFeatureExtractor(fused_for_inference(module), spec.appearance.stages)
    extractor = extractor.to(device).eval().to(memory_format=torch.channels_last)
    if PROJECTION_COMPONENTS in tensors:
        extractor.set_projection(tensors[PROJECTION_MEAN], tensors[PROJECTION_COMPONENTS])
    return extractor
