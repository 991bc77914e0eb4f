"""The demo's two datasets, as archives the upload route takes (one folder per label; below it
a clip is a video, ``normal/Train001.mp4``, or a folder of frames, ``abnormal/Test001/004.jpg``:
clips are the groups evaluation holds out).

- ``walkway-normal``: normal footage only, for a one_class job: UCSD Ped2's training clips
  (every frame there is normal), as the videos they are: the API decodes each into a clip of
  frames with the video's capture times, so the fit reads their 10 fps from them.
- ``walkway-labeled``: ``normal`` and ``abnormal`` frames, for a classify job: Ped2 test clips
  that hold both, labeled by the dataset's frame-level ground truth. A demo, not a benchmark:
  those clips are Ped2's test set, so never report a figure from a model trained on it.

Without Ped2 both are cut from FFmpeg's own test scene (``testsrc2``), the abnormal frames with
a filled box drawn over it. Frames are decoded and encoded by the ``ffmpeg`` program, so the CLI
needs neither a video library nor an image library.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

NORMAL_NAME = "walkway-normal"
LABELED_NAME = "walkway-labeled"
PED2_TRAIN_CLIPS = tuple(f"Train{i:03d}" for i in range(1, 5))
# Test clips whose first frames are normal and the rest abnormal: both labels in each group.
PED2_LABELED_CLIPS = ("Test001", "Test002", "Test004", "Test007", "Test012")
PED2_LABELED_EVERY = 4
SCENE = "testsrc2=size=320x240:rate=5"
ANOMALY_BOX = "drawbox=x=iw/3:y=ih/3:w=iw/4:h=ih/4:color=red:t=fill"


class DemoDataError(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoSet:
    name: str
    description: str
    archive: Path


def ffmpeg_program() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        raise DemoDataError("the demo datasets need ffmpeg on PATH (apt-get install ffmpeg)")
    return found


def _ffmpeg(args: list[str]) -> None:
    command = [ffmpeg_program(), "-loglevel", "error", "-nostdin", "-y", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise DemoDataError(f"ffmpeg failed ({' '.join(args)}): {result.stderr.strip()[-500:]}")


def extract_frames(source_args: list[str], out_dir: Path, *, video_filter: str) -> list[Path]:
    """Decode to JPEG files ``001.jpg``, ``002.jpg``... (their number is the sequence)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _ffmpeg([*source_args, "-vf", video_filter, "-fps_mode", "vfr", "-q:v", "3",
             str(out_dir / "%03d.jpg")])  # fmt: skip
    frames = sorted(out_dir.glob("*.jpg"))
    if not frames:
        raise DemoDataError(f"ffmpeg wrote no frame for {' '.join(source_args)}")
    return frames


def write_zip(path: Path, entries: dict[str, Path]) -> Path:
    # Footage (JPEGs, videos) does not compress: stored, the archive is written at disk speed.
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, file in sorted(entries.items()):
            archive.write(file, name)
    return path


def abnormal_frames(labels: dict[str, object], clip: str) -> set[int]:
    """Ped2's 1-based, inclusive ``[first, last]`` ranges of one clip, as frame numbers."""
    clips = labels.get("clips")
    ranges = clips.get(clip, {}).get("abnormal", []) if isinstance(clips, dict) else []
    return {n for first, last in ranges for n in range(int(first), int(last) + 1)}


def ped2_sets(root: Path, work: Path) -> list[DemoSet]:
    normal: dict[str, Path] = {}
    for clip in PED2_TRAIN_CLIPS:
        video = root / "train" / f"{clip}.mp4"
        if not video.is_file():
            raise DemoDataError(f"{video} is missing; is {root} a complete UCSD Ped2 copy?")
        normal[f"normal/{clip}.mp4"] = video
    labels = json.loads((root / "labels.json").read_text())
    labeled: dict[str, Path] = {}
    for clip in PED2_LABELED_CLIPS:
        abnormal = abnormal_frames(labels, clip)
        for frame in sorted((root / "test_frames" / clip).glob("*.jpg")):
            number = int(frame.stem)
            if (number - 1) % PED2_LABELED_EVERY == 0:
                label = "abnormal" if number in abnormal else "normal"
                labeled[f"{label}/{clip}/{frame.name}"] = frame
    return [
        DemoSet(NORMAL_NAME, f"UCSD Ped2 {PED2_TRAIN_CLIPS[0]}-{PED2_TRAIN_CLIPS[-1]} videos, "
                "every frame at 10 fps (normal)", write_zip(work / "normal.zip", normal)),
        DemoSet(LABELED_NAME, f"UCSD Ped2 test clips {', '.join(PED2_LABELED_CLIPS)}, every "
                f"{PED2_LABELED_EVERY}th frame, frame-level labels (a demo, not a benchmark)",
                write_zip(work / "labeled.zip", labeled)),
    ]  # fmt: skip


def generated_sets(work: Path, *, clips: int = 4, seconds: int = 6) -> list[DemoSet]:
    normal: dict[str, Path] = {}
    labeled: dict[str, Path] = {}
    for i in range(clips):
        clip = f"scene{i + 1:02d}"
        source = ["-f", "lavfi", "-i", SCENE, "-ss", str(i * 2 * seconds), "-t", str(seconds)]
        for frame in extract_frames(source, work / clip, video_filter="null"):
            normal[f"normal/{clip}/{frame.name}"] = frame
            labeled[f"normal/{clip}/{frame.name}"] = frame
        later = ["-f", "lavfi", "-i", SCENE, "-ss", str((i * 2 + 1) * seconds), "-t", str(seconds)]
        for frame in extract_frames(later, work / f"{clip}-box", video_filter=ANOMALY_BOX):
            labeled[f"abnormal/{clip}/{frame.name}"] = frame
    what = f"FFmpeg's testsrc2 scene, {clips} clips of {seconds} s"
    return [
        DemoSet(NORMAL_NAME, f"{what} (normal)", write_zip(work / "normal.zip", normal)),
        DemoSet(LABELED_NAME, f"{what}; abnormal: a red box drawn over it",
                write_zip(work / "labeled.zip", labeled)),
    ]  # fmt: skip


def build(ped2: Path, work: Path) -> tuple[str, list[DemoSet]]:
    """The demo sets from Ped2 when ``ped2`` holds it, else from the generated scene."""
    if (ped2 / "labels.json").is_file():
        return "ucsd-ped2", ped2_sets(ped2, work)
    return "generated", generated_sets(work)
