"""The spec of a ``one_class`` job: a normality model fitted from normal frames only.

The model has up to three streams: appearance (a coreset memory bank of patch features from
intermediate backbone stages, scored by nearest-neighbour distance), motion (optical-flow
magnitude per grid cell that persists over consecutive frames) and scene (the whole frame: its
mean patch feature against the normal frames', its overall motion too high or low; fitted from
``scene.min_groups`` normal groups on).
``fusion`` says how they combine: ``calibrated_max`` turns each into the surprise of its score
under the site's held-out normal frames and takes the largest, so any stream can alarm on its
own; ``calibrated_sum`` adds the same surprises up by Fisher's method, so streams that are
each somewhat unusual together alarm sooner; ``weighted`` is the weighted mean of appearance
and motion z-scores (the method of models fitted before ``fusion`` existed, which is what a
stored manifest without it means).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil_shared.datasets import DatasetRef
from vigil_shared.schemas.assignments import ModelId
from vigil_shared.schemas.inputs import SafeName

__all__ = [
    "MIN_SCENE_GROUPS",
    "RETRAIN_TRIM_MARGIN_S",
    "SCENE_LEFT_OUT",
    "STORED_BEFORE",
    "STORED_MOTION_BEFORE",
    "STORED_SCENE_BEFORE",
    "STORED_WITHOUT_FUSION",
    "AppearanceSpec",
    "EvidenceSpec",
    "Fusion",
    "MotionSpec",
    "OneClassSpec",
    "SceneSpec",
    "as_requested",
    "with_stored_defaults",
]

# What ``POST /cameras/{id}/retrain`` sets ``trim_margin_s`` to: seconds of footage left out on
# each side of an event. An event closes a few quiet frames after its last hot one, while whoever
# caused it is often still in view, slower or partly hidden, for some seconds; a site retains
# hours, so a few seconds per event cost little, and an anomaly's frames in the banks cost much.
RETRAIN_TRIM_MARGIN_S = 5.0

Fusion = Literal["calibrated_max", "calibrated_sum", "weighted"]
STORED_WITHOUT_FUSION: Fusion = "weighted"
"""What a stored one_class spec without ``fusion`` was fitted with: the only method then."""
STORED_BEFORE: dict[str, Any] = {
    "fusion": STORED_WITHOUT_FUSION,
    "false_alarms_per_hour": None,
    "cross_fit_folds": 1,
    "scene": None,
    "segment_s": None,
}
"""What a stored one_class spec lacking a field was fitted with: the method before it existed
(weighted fusion; a threshold at ``target_fpr`` of the held-out groups' frames)."""
STORED_MOTION_BEFORE: dict[str, Any] = {"full_window": False}
"""The same for a stored spec's ``motion`` part: motion scored from a camera's second frame."""
STORED_SCENE_BEFORE: dict[str, Any] = {"min_groups": 1}
"""The same for a stored spec's ``scene`` part: the stream was fitted whatever the groups."""
# The scene stream is fitted from this many normal groups on. On Ped2's training clips (docs/
# one-class.md, "The scene stream, on from five groups"), fitted on 3 clips it raised 10 false
# events in 3.5 minutes of other normal clips; fitted on 5 or 8, none on 8 unseen clips, and it
# found as many synthetic anomalies within 1 s, and scenes that empty, lenses covered and cameras
# knocked sooner.
MIN_SCENE_GROUPS = 5
# Normal footage is cut into groups of about this many seconds for the fit's split (``segment_s``):
# half a minute is two of Ped2's clips, whose 16 groups of 12-18 s calibrate well, and an hour of a
# camera's footage (one group as recorded, ``vigil_shared.dataset_groups``) then gives 120.
SEGMENT_S = 30.0
SCENE_LEFT_OUT = "scene_left_out_min_groups"
"""The fit metric, present when the fit left the scene stream out for want of normal groups:
the ``min_groups`` asked for (the stored spec then has no scene, as the model scores)."""


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AppearanceSpec(_Part):
    """Patch features of EfficientNet-Lite0 stages, a coreset bank, kNN distance per patch."""

    weight: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="Weight in weighted fusion; 0 turns the stream off in either fusion.",
    )
    # The bounds are for the JSON Schema; ``_stages_exist`` checks them, saying what a stage is.
    stages: tuple[Annotated[int, Field(json_schema_extra={"minimum": 0, "maximum": 6})], ...] = (
        Field(
            default=(2, 4),
            min_length=1,
            max_length=4,
            description="Lite0 stages (0..6) to take patches from; 2 and 4 are strides 8 and 16.",
        )
    )
    frame_stride: int = Field(
        default=2, ge=1, le=100, description="Take the bank's patches from every n-th frame."
    )
    coreset_ratio: float = Field(
        default=0.01, gt=0, le=1, description="Fraction of candidate patches the coreset keeps."
    )
    bank_size: int = Field(default=2048, ge=8, le=65_536, description="Upper bound on the bank.")
    whiten_dim: int = Field(
        default=64,
        ge=0,
        le=1024,
        description="Site adaptation: whitening PCA to this many dims fitted on the site's "
        "normal patches; 0 keeps the pretrained features.",
    )
    top_k: int = Field(default=1, ge=1, le=64, description="Patches averaged into the score.")

    @model_validator(mode="after")
    def _stages_exist(self) -> AppearanceSpec:
        if any(s < 0 or s > 6 for s in self.stages) or len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages must be distinct Lite0 stage indices 0..6, got {self.stages}")
        return self


class MotionSpec(_Part):
    """Dense optical flow between consecutive frames of a group, mean magnitude per grid cell.

    ``farneback`` is OpenCV's (on a CPU, one frame pair at a time; on a CUDA device the same
    algorithm batched in torch, ``vision.torch_farneback``); ``lucas_kanade`` is pyramidal
    Lucas-Kanade in torch (``vision.torch_flow``): batched, on the model's device. The pyramid
    levels, window and iterations mean the same for both. ``dis`` is OpenCV's dense inverse
    search (CPU, a pair at a time, an order of magnitude cheaper than Farneback), tuned by its
    ``preset`` alone (the others ignore it; DIS ignores the Farneback knobs)."""

    method: Literal["farneback", "lucas_kanade", "dis"] = Field(
        default="farneback", description="How flow is computed (see the class docstring)."
    )
    preset: Literal["ultrafast", "fast", "medium"] = Field(
        default="ultrafast",
        description="DIS flow's OpenCV preset (method dis only; docs/one-class.md says why "
        "ultrafast).",
    )
    weight: float = Field(
        default=0.8,
        ge=0,
        le=1,
        description="Weight in weighted fusion; 0 turns the stream off in either fusion.",
    )
    flow_height: int = Field(default=240, ge=32, le=1080, description="Frames are resized to it.")
    flow_width: int = Field(default=360, ge=32, le=1920)
    grid_rows: int = Field(default=15, ge=1, le=64)
    grid_cols: int = Field(default=23, ge=1, le=64)
    levels: int = Field(default=3, ge=1, le=8, description="Farneback pyramid levels.")
    winsize: int = Field(default=15, ge=3, le=63, description="Farneback averaging window.")
    iterations: int = Field(default=3, ge=1, le=10)
    persistence: int = Field(
        default=4,
        ge=1,
        le=16,
        description="A cell's motion is its least over this many consecutive flows (1 = off).",
    )
    persistence_radius: int = Field(
        default=0,
        ge=0,
        le=4,
        description="Persistence follows motion that moves on by up to this many cells a frame: "
        "the flow n frames back counts the most motion within n * radius cells (0, the "
        "default: the cell itself; docs/one-class.md says why).",
    )
    full_window: bool = Field(
        default=True,
        description="A camera's first flows (after a start, a reconnect or a new model) have no "
        "full persistence window behind them: true (the default) leaves their motion unscored, "
        "as a first frame's is (judged on the other streams); false takes the least over the "
        "flows there are, which lets one-frame noise through (docs/one-class.md).",
    )
    reference_fps: float | None = Field(
        default=None,
        gt=0,
        le=120,
        description="Frame rate the flows and the persistence window are taken at, in the fit "
        "and live: footage at another rate has its flows taken over several frames or scaled "
        "(vision.motion_pace), so `persistence` flows span persistence / reference_fps seconds "
        "at any rate; null (the default): one frame a step at the footage's own rate, so the "
        "window spans persistence frames of it (docs/one-class.md, measured both ways).",
    )
    top_k: int = Field(default=10, ge=1, le=256, description="Cells averaged into the score.")
    cell_block: int = Field(
        default=0,
        ge=0,
        le=64,
        description="A cell's motion is the mean magnitude of its fastest block of this many "
        "pixels a side (at flow size), so an object covering part of a cell counts at its own "
        "speed; 0 (the default): the whole cell's mean (docs/one-class.md).",
    )
    per_cell: bool = Field(
        default=False,
        description="Perspective: judge each cell's motion against that cell's own normal "
        "level (its 90% quantile on the site's normal frames), so that slow flow far from the "
        "camera, or motion toward it, counts as much as fast flow near it (docs/one-class.md).",
    )
    per_row: bool = Field(
        default=False,
        description="Perspective by distance: judge each grid row's motion against that row's "
        "normal level (the 90% quantile of its busiest cell on the site's normal frames), so "
        "that a far row's slow flow counts as a near row's fast one, while every cell of a row "
        "shares the level its walkers set (docs/one-class.md). Not with per_cell.",
    )

    @property
    def rescaled(self) -> bool:
        """Whether cells are judged against a fitted normal level (``per_cell``, ``per_row``)."""
        return self.per_cell or self.per_row

    @model_validator(mode="after")
    def _grid_fits(self) -> MotionSpec:
        if self.grid_rows * 4 > self.flow_height or self.grid_cols * 4 > self.flow_width:
            raise ValueError(
                f"a {self.grid_rows}x{self.grid_cols} grid needs cells of at least 4 pixels: "
                f"raise flow_height/flow_width ({self.flow_height}x{self.flow_width}) or "
                "lower grid_rows/grid_cols"
            )
        if self.top_k > self.grid_rows * self.grid_cols:
            raise ValueError(f"top_k ({self.top_k}) exceeds the grid's cell count")
        if self.per_cell and self.per_row:
            raise ValueError("per_cell and per_row are two levels for the same cells: pick one")
        block = self.cell_block
        if block and (
            self.flow_height // block < self.grid_rows or self.flow_width // block < self.grid_cols
        ):
            raise ValueError(
                f"cell_block {block} is larger than a cell of the {self.grid_rows}x"
                f"{self.grid_cols} grid at {self.flow_height}x{self.flow_width}"
            )
        return self


class SceneSpec(_Part):
    """Anomalies of the whole frame, in both directions: a scene emptied or suddenly crowded, a
    camera covered, blurred or moved. Used by the calibrated fusions only."""

    embedding: bool = Field(
        default=True,
        description="Score the frame's mean patch feature by its distance to the normal "
        "frames' (needs the appearance stream; off without it).",
    )
    activity: bool = Field(
        default=True,
        description="Score the frame's mean persistent motion against its normal range, too "
        "much and too little (needs the motion stream; off without it).",
    )
    bank_frames: int = Field(
        default=4096, ge=16, le=65_536, description="At most this many normal frames kept."
    )
    min_groups: int = Field(
        default=MIN_SCENE_GROUPS,
        ge=1,
        le=10_000,
        description="The fit leaves the stream out (and says so) when fewer normal groups "
        "(clips, or stretches of a camera's footage of up to an hour) calibrate than this: "
        "every normal group, cross-fitted (cross_fit_folds > 1), else the held-out ones. A "
        "scene's normal range is learned across groups, and a few show a few crowd levels and "
        "lights, so other normal footage looks new (docs/one-class.md).",
    )


class EvidenceSpec(_Part):
    """Evidence accumulated over a camera's recent frames (calibrated fusions): a frame scores
    its own surprise plus what the frames just before it had beyond ``drift``, over the run of
    at most ``window`` frames that gives the most (a windowed CUSUM). An anomaly that is only
    somewhat unusual on every frame (a slow cart, a walker on the lawn) adds up, while a frame
    alone scores exactly its surprise. Scores stay >= 0 and never fall below the frame's own."""

    window: int = Field(
        default=10,
        ge=2,
        le=64,
        description="Frames the run may span, the frame itself included (a camera's last "
        "window - 1 scores are kept, and replayed after a restart).",
    )
    drift: float = Field(
        default=math.log(10),
        ge=0,
        le=20,
        description="Surprise a frame must exceed to add evidence; ln 10 by default, each "
        "stream's 90% level on the site's normal frames (one normal frame in ten adds any).",
    )


class OneClassSpec(BaseModel):
    """Fit a normality model from normal frames only (appearance and motion memory banks)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: SafeName = Field(examples=["ped2-walkway"])
    task: Literal["one_class"] = "one_class"
    backbone: Literal["efficientnet_lite0"] = "efficientnet_lite0"
    backbone_model_id: ModelId | None = Field(
        default=None,
        description="Take the patch features from this registry classify model (an "
        "efficientnet_lite0 fine-tuned on the site's labeled footage) instead of the ImageNet "
        "weights; the fitted model stores those weights in its own artifact.",
    )
    dataset: DatasetRef
    image_size: int = Field(default=224, ge=64, le=640, multiple_of=32)
    appearance: AppearanceSpec = Field(default_factory=AppearanceSpec)
    motion: MotionSpec | None = Field(
        default_factory=MotionSpec, description="null fits an appearance-only model."
    )
    scene: SceneSpec | None = Field(
        default_factory=SceneSpec,
        description="The scene stream (calibrated fusions only; a weighted spec without it "
        "has none): on by default from scene.min_groups normal groups, which the fit checks; "
        "null leaves it off.",
    )
    fusion: Fusion = Field(
        default="calibrated_max",
        description="calibrated_max: each stream's score as its surprise under the site's "
        "held-out normal frames, the largest wins; calibrated_sum: the same surprises "
        "combined by Fisher's method (their sum, read as a surprise); weighted: the weights' "
        "mean of appearance and motion z-scores. A stored model without it was fitted with "
        "weighted.",
    )
    k: int = Field(default=1, ge=1, le=64, description="Neighbours averaged in the kNN distance.")
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of groups (clips) held out to calibrate."
    )
    target_fpr: float = Field(
        default=0.01,
        gt=0,
        lt=0.5,
        description="Share of held-out normal frames above the threshold, when "
        "false_alarms_per_hour is null.",
    )
    false_alarms_per_hour: float | None = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="The threshold aims at this many false events per camera-hour (events as "
        "the worker raises them, after its k-of-n debounce), extrapolated from the normal "
        "footage's scores; the fit reports the rate it expects with a 90% interval. null: "
        "target_fpr of held-out normal frames instead.",
    )
    segment_s: float | None = Field(
        default=SEGMENT_S,
        ge=5,
        le=86_400,
        description="Normal footage at least twice this long (one long recording, an hour of a "
        "camera's) is cut into groups of about this many seconds before the split, so the banks, "
        "the held-out and cross-fitted calibration and the scene stream's group count get what "
        "separate clips would give. null: the dataset's groups as they are.",
    )
    cross_fit_folds: int = Field(
        default=5,
        ge=1,
        le=20,
        description="Calibration scores every normal group with banks that never saw it: the "
        "bank groups in this many cross-fitted folds besides the held-out groups (1: the "
        "held-out groups only).",
    )
    smoothing_window: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Trailing moving average over a camera's last n frame scores (1 = off).",
    )
    evidence: EvidenceSpec | None = Field(
        default=None,
        description="Accumulate evidence over a camera's recent frames (calibrated fusions "
        "only; not with smoothing_window); null scores each frame alone.",
    )
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    footage_fps: float | None = Field(
        default=None,
        gt=0,
        le=120,
        description="Frame rate of the dataset's groups where their frames carry no capture "
        "times (an uploaded archive of images; its videos carry theirs): motion is judged per "
        "frame interval of the footage, and a camera at another rate is judged in those units. "
        "Null: from capture times, else 10.",
    )
    trim_margin_s: float | None = Field(
        default=None,
        ge=0,
        le=600,
        description="Trimmed footage (a retrain sets it): before the fit, the production model "
        "scores the dataset's footage groups (not its reviewed events) and frames it scored hot, "
        "and this many seconds around each of its events not reviewed as a false alarm, are "
        "left out; null fits every frame.",
    )

    @property
    def calibrated(self) -> bool:
        """The fusion combines the streams' surprises (``calibrated_tails``), not z-scores."""
        return self.fusion != "weighted"

    @property
    def scene_embedding(self) -> bool:
        """The scene stream's embedding part is in use (it rides on the appearance features)."""
        return self.scene is not None and self.scene.embedding and self.appearance.weight > 0

    @property
    def scene_activity(self) -> bool:
        """The scene stream's activity part is in use (it rides on the motion maps)."""
        motion_on = self.motion is not None and self.motion.weight > 0
        return self.scene is not None and self.scene.activity and motion_on

    @model_validator(mode="before")
    @classmethod
    def _weighted_has_no_scene(cls, data: Any) -> Any:
        """``weighted`` has no scene stream: a spec that names it without ``scene`` gets none
        (one that asks for both is refused below)."""
        if isinstance(data, dict) and data.get("fusion") == "weighted" and "scene" not in data:
            return data | {"scene": None}
        return data

    @model_validator(mode="after")
    def _some_stream(self) -> OneClassSpec:
        if self.fusion == "weighted" and self.scene is not None:
            raise ValueError(
                "fusion 'weighted' fuses appearance and motion by weight and has no scene "
                "stream: set scene to null, or use a calibrated fusion"
            )
        if self.evidence is not None and not self.calibrated:
            raise ValueError(
                "evidence accumulates surprises beyond a drift: it needs a calibrated fusion "
                "(calibrated_max or calibrated_sum), not 'weighted'"
            )
        if self.evidence is not None and self.smoothing_window > 1:
            raise ValueError(
                "evidence and smoothing_window both combine a camera's recent scores: use one"
            )
        motion_weight = self.motion.weight if self.motion is not None else 0.0
        if self.appearance.weight + motion_weight <= 0:
            raise ValueError("appearance.weight and motion.weight are both 0: nothing would score")
        return self


def as_requested(spec: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """A stored spec as its job asked for it, for a retrain: a scene stream the fit left out
    for want of normal groups (``SCENE_LEFT_OUT``) is asked for again, as new footage may hold
    enough."""
    min_groups = metrics.get(SCENE_LEFT_OUT)
    if spec.get("scene") is not None or not isinstance(min_groups, int | float):
        return spec
    if not math.isfinite(min_groups):  # not a fit's metric: the spec as stored
        return spec
    return spec | {"scene": {"min_groups": int(min_groups)}}


def with_stored_defaults(spec: Any) -> Any:
    """A stored one_class spec (a manifest's) as it was fitted: a field it lacks predates it
    (``STORED_BEFORE``, and ``STORED_MOTION_BEFORE``/``STORED_SCENE_BEFORE`` in its motion and
    scene parts)."""
    is_one_class = isinstance(spec, dict) and spec.get("task", "one_class") == "one_class"
    if not is_one_class:
        return spec
    before = {name: value for name, value in STORED_BEFORE.items() if name not in spec}
    motion = spec.get("motion")
    if isinstance(motion, dict):
        before["motion"] = {
            k: v for k, v in STORED_MOTION_BEFORE.items() if k not in motion
        } | motion
    scene = spec.get("scene")
    if isinstance(scene, dict):
        before["scene"] = {k: v for k, v in STORED_SCENE_BEFORE.items() if k not in scene} | scene
    return spec | before
