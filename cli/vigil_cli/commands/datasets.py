"""``vigil datasets``: list, show, and upload an archive (or one recording) with a progress
bar."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from vigil_cli.client import ApiClient, CliError, ExitCode, connect
from vigil_cli.options import (
    TIME_HELP,
    End,
    EveryN,
    GapS,
    Reason,
    SegmentS,
    Start,
    given,
    time_option,
)
from vigil_cli.output import Column, JsonOption, details, err_console, short_time, show, table

app = typer.Typer(name="datasets", help="Datasets: versioned sets of labeled frames.")
Name = Annotated[str, typer.Argument(help="The dataset's name (lowercase).")]
# An upload is read and checked whole before the API answers: allow a large one time.
UPLOAD_TIMEOUT_S = 600.0

VERSION_COLUMNS: list[Column] = [
    ("version", lambda v: str(v["version"])[:12]),
    ("created", lambda v: short_time(v.get("created_at"))),
    ("source", "source"),
    ("images", "n_items"),
    ("labels", "label_counts"),
    ("description", "description"),
]


class ProgressReader(io.BufferedReader):
    """A file that reports how far it has been read: httpx streams the multipart body from it
    (and takes its length from the file, so the upload carries a Content-Length)."""

    def __init__(self, path: Path, on_read: Callable[[int], None]) -> None:
        super().__init__(io.FileIO(path))
        self.on_read = on_read

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.on_read(self.tell())
        return chunk


@app.command("list")
def list_datasets(as_json: JsonOption = False) -> None:
    """Datasets this key sees, with their latest version."""
    with connect() as api:
        datasets = api.get("/api/v1/datasets")
    columns: list[Column] = [
        ("name", "name"),
        ("versions", "versions"),
        ("latest", lambda d: str(d["latest"]["version"])[:12]),
        ("created", lambda d: short_time(d["latest"].get("created_at"))),
        ("images", "latest.n_items"),
        ("labels", "latest.label_counts"),
    ]
    show(datasets, as_json, lambda: table(datasets, columns, title="Datasets"))


@app.command("show")
def show_dataset(name: Name, as_json: JsonOption = False) -> None:
    """A dataset's versions, oldest first."""
    with connect() as api:
        dataset = api.get(f"/api/v1/datasets/{name}")
    show(
        dataset,
        as_json,
        lambda: table(dataset["versions"], VERSION_COLUMNS, title=f"Dataset {name}"),
    )


def upload_archive(
    api: ApiClient,
    *,
    name: str,
    archive: Path,
    description: str,
    quiet: bool,
    video_fps: float | None = None,
) -> dict[str, Any]:
    """Upload ``archive`` as a new version of ``name``; a bar on stderr unless ``quiet``."""
    size = archive.stat().st_size
    columns = (
        TextColumn("uploading {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console(), disable=quiet, transient=True) as progress:
        task = progress.add_task(archive.name, total=size)
        with ProgressReader(archive, lambda done: progress.update(task, completed=done)) as body:
            created: dict[str, Any] = api.call(
                "POST",
                f"/api/v1/datasets/{name}/versions",
                files={"archive": (archive.name, body, "application/octet-stream")},
                data={"description": description}
                | ({} if video_fps is None else {"video_fps": str(video_fps)}),
                timeout=UPLOAD_TIMEOUT_S,
            )
    return created


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


@contextmanager
def as_archive(path: Path, label: str) -> Iterator[Path]:
    """``path`` itself when it is an archive; else a zip (stored, not compressed: footage does
    not compress) holding it as ``<label>/<name>``, removed afterwards."""
    if is_archive(path):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="vigil-upload-") as folder:
        wrapped = Path(folder) / f"{path.stem}.zip"
        with zipfile.ZipFile(wrapped, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.write(path, f"{label}/{path.name}")
        yield wrapped


@app.command("upload")
def upload(
    name: Name,
    archive: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="zip, tar, tar.gz/bz2/xz of images and videos; or one video (or image).",
        ),
    ],
    label: Annotated[
        str, typer.Option(help="The label of a single video or image (not of an archive).")
    ] = "normal",
    description: Annotated[str, typer.Option(help="What this version holds.")] = "",
    video_fps: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            max=120,
            help="Keep at most this many frames a second of each video: the camera's rate, "
            "for a recorder's 25 or 30 fps (default: every frame).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Upload an archive (one folder per label, or a manifest) as a new version (operator).

    A single video is sent as an archive holding it under --label:
    vigil datasets upload hall monday.mp4 --video-fps 5

    The same content uploaded again returns the existing version (created: false).
    """
    with connect() as api, as_archive(archive, label) as body:
        created = upload_archive(
            api,
            name=name,
            archive=body,
            description=description,
            quiet=as_json,
            video_fps=video_fps,
        )
    show(created, as_json, lambda: _created(created))


Description = Annotated[str, typer.Option(help="What this version holds.")]


@app.command("from-camera")
def from_camera(
    name: Name,
    camera: Annotated[str, typer.Option(help="The camera whose frames to keep.")],
    start: Start,
    end: End,
    every_n: EveryN = 1,
    label: Annotated[str, typer.Option(help="The label of every frame.")] = "normal",
    gap_s: GapS = None,
    segment_s: SegmentS = None,
    description: Description = "",
    as_json: JsonOption = False,
) -> None:
    """A new version from a camera's frames from --start to --end, read back from Kafka
    (operator).

    vigil datasets from-camera hall --camera hall-1 --start 2026-12-08T08:00Z \
      --end 2026-12-08T08:30Z --every-n 10
    """
    body = {
        "camera_id": camera,
        "start": start,
        "end": end,
        "every_n": every_n,
        "label": label,
        "description": description,
    }
    body |= given(gap_s=gap_s, segment_s=segment_s)
    with connect() as api:
        created = api.post(f"/api/v1/datasets/{name}/versions/from-camera", body)
    show(created, as_json, lambda: _created(created))


@app.command("from-events")
def from_events(
    name: Name,
    camera: Annotated[
        list[str] | None,
        typer.Option(help="Only this camera's events (repeatable; default: all this key sees)."),
    ] = None,
    review: Annotated[
        list[str] | None,
        typer.Option(help="confirmed or false_positive (repeatable; default: both)."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(callback=time_option, help=f"Events started at or after: {TIME_HELP}."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(callback=time_option, help=f"Events started at or before: {TIME_HELP}."),
    ] = None,
    description: Description = "",
    as_json: JsonOption = False,
) -> None:
    """A new version from reviewed events' frames, labeled by their review (operator)."""
    body = {"description": description} | given(
        camera_ids=camera or None, review=review or None, start=start, end=end
    )
    with connect() as api:
        created = api.post(f"/api/v1/datasets/{name}/versions/from-events", body)
    show(created, as_json, lambda: _created(created))


def parse_part(text: str) -> dict[str, str]:
    """``DATASET``, ``DATASET@VERSION``, either with ``=LABEL``: a dataset's latest (or given)
    version, every image relabeled when a label is given."""
    rest, _, label = text.partition("=")
    dataset, _, version = rest.partition("@")
    if not dataset or (text.count("=") and not label) or (rest.count("@") and not version):
        raise CliError(
            f"--part {text!r}: write DATASET, DATASET@VERSION, DATASET=LABEL or "
            "DATASET@VERSION=LABEL",
            ExitCode.USAGE,
        )
    return (
        {"dataset": dataset}
        | ({"version": version} if version else {})
        | ({"label": label} if label else {})
    )


@app.command("compose")
def compose(
    name: Name,
    part: Annotated[
        list[str],
        typer.Option(
            help="A dataset (its latest version), DATASET@VERSION for another, with =LABEL to "
            "relabel every image; repeatable, in order: e.g. --part footage --part "
            "false-alarms=normal --part confirmed."
        ),
    ],
    description: Description = "",
    as_json: JsonOption = False,
) -> None:
    """A new version made of other datasets' versions, some relabeled (operator)."""
    body = {"parts": [parse_part(p) for p in part], "description": description}
    with connect() as api:
        created = api.post(f"/api/v1/datasets/{name}/versions/compose", body)
    show(created, as_json, lambda: _created(created))


def _created(version: dict[str, Any]) -> None:
    what = "new version" if version.get("created") else "identical to existing version"
    details(version, [("dataset", "name"), *VERSION_COLUMNS], title=what)


@app.command("delete")
def delete_version(
    name: Name,
    version: Annotated[str, typer.Argument(help="The version's full id.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Even though a model was trained on it or an unfinished job needs it."
        ),
    ] = False,
    reason: Reason = None,
) -> None:
    """Delete a dataset version, its images and manifest (fleet-wide operator); refused while a
    model was trained on it or an unfinished job will read it, unless --force."""
    with connect() as api:
        api.delete(
            f"/api/v1/datasets/{name}/versions/{version}", force=force or None, reason=reason
        )
    err_console().print(f"dataset {name} version {version[:12]} deleted", markup=False)
