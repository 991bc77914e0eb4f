"""Dataset archives (zip, tar, tar.gz/bz2/xz), checked before anything is stored.

An archive is untrusted input: it may name files outside any folder (``../``, absolute paths,
links, devices), expand without bound (a bomb), lie about its sizes, or hold files that are not
images. ``read_archive`` reads entry headers first and refuses the whole archive on any
problem, then reads and decodes every image and every video (``archive_videos.py``: each a
clip of frames with capture times); every problem found is reported by entry name at
once (``ArchiveError.problems``), so a user fixes the archive in one go. Nothing here writes
anywhere: the caller stores the images only when the archive is accepted whole.

Labels, groups and sequence numbers come from a manifest or from each image's path
(``archive_labels.py``). A video takes its label the same way; its group is the video itself
(its path below the label folder without the extension, or the manifest's group), its frames'
sequence numbers their order in it, and a group holds one video or images, never both. Entry
names are names (``vigil_shared.schemas.inputs``): at most 1024 characters, no control or
bidirectional formatting character. Hidden files and ``__MACOSX/`` are skipped.
"""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import IO

from PIL import Image, UnidentifiedImageError

from vigil_api.domain.archive_labels import MANIFEST_NAMES, Labels, labels_from_path, read_manifest
from vigil_api.domain.archive_videos import VIDEO_EXTENSIONS, VideoBudget, video_frames
from vigil_shared.schemas.inputs import name_problem

IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
KNOWN = ", ".join(IMAGE_FORMATS)
VIDEOS = ", ".join(sorted(VIDEO_EXTENSIONS))
MAX_PROBLEMS_LISTED = 50
SHOWN_NAME_LENGTH = 200  # a refused name is quoted up to this long in the problem
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int
    max_entries: int
    max_uncompressed_bytes: int
    max_ratio: float
    max_pixels: int


@dataclass(frozen=True)
class EntryProblem:
    entry: str = "(archive)"
    reason: str = ""

    def __str__(self) -> str:
        return f"{self.entry}: {self.reason}"


class ArchiveError(ValueError):
    """The archive is refused; ``problems`` names each entry at fault and why."""

    def __init__(self, problems: list[EntryProblem]) -> None:
        listed = problems[:MAX_PROBLEMS_LISTED]
        more = len(problems) - len(listed)
        text = "; ".join(str(p) for p in listed) + (f"; and {more} more" if more else "")
        super().__init__(f"the archive was refused, nothing was stored: {text}")
        self.problems = problems


@dataclass(frozen=True)
class ArchiveImage:
    name: str
    data: bytes
    extension: str
    label: str
    group: str
    sequence: int | None
    captured_at: datetime | None = None
    """A video's frame: when, by the video's own clock; None for an image."""


@dataclass(frozen=True)
class _Entry:
    name: str
    size: int
    compressed: int | None  # None: unknown per entry (tar); the archive's ratio is checked
    kind: str  # file, dir, link, special


class _Reader:
    """One archive format's entries and contents behind the same three calls."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        if zipfile.is_zipfile(fileobj):
            fileobj.seek(0)
            self._zip = zipfile.ZipFile(fileobj)
            return
        fileobj.seek(0)
        try:
            self._tar = tarfile.open(fileobj=fileobj, mode="r:*")  # noqa: SIM115 (close())
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArchiveError(
                [EntryProblem(reason="not a zip or tar archive (tar.gz, tar.bz2, tar.xz too)")]
            ) from exc

    def entries(self, max_entries: int) -> Iterator[_Entry]:
        if self._zip is not None:
            for info in self._zip.infolist():
                yield _zip_entry(info)
            return
        assert self._tar is not None
        for count, member in enumerate(self._tar, start=1):
            if count > max_entries:  # stop reading headers: the count alone refuses it
                yield _Entry(name="(more entries)", size=0, compressed=None, kind="file")
                return
            yield _tar_entry(member)

    def read(self, name: str, size: int) -> bytes:
        """At most ``size`` bytes; more than the header declared is a lie, refused."""
        if self._zip is not None:
            stream: IO[bytes] | None = self._zip.open(name)
        else:
            assert self._tar is not None
            stream = self._tar.extractfile(name)
        if stream is None:
            raise ValueError("not a regular file")
        try:
            with stream:
                data = stream.read(size + 1)
        except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError, OSError) as exc:
            raise ValueError(f"cannot be read from the archive ({exc})") from exc
        if len(data) > size:
            raise ValueError("holds more data than its header declares (a bomb?)")
        return data

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()


def _zip_entry(info: zipfile.ZipInfo) -> _Entry:
    mode = info.external_attr >> 16
    kind = "dir" if info.is_dir() else "file"
    if mode and (mode & 0o170000) == 0o120000:
        kind = "link"
    elif mode and (mode & 0o170000) not in (0, 0o100000, 0o040000):
        kind = "special"
    return _Entry(name=info.filename, size=info.file_size, compressed=info.compress_size, kind=kind)


def _tar_entry(member: tarfile.TarInfo) -> _Entry:
    if member.isdir():
        kind = "dir"
    elif member.issym() or member.islnk():
        kind = "link"
    elif member.isfile():
        kind = "file"
    else:
        kind = "special"
    return _Entry(name=member.name, size=member.size, compressed=None, kind=kind)


def read_archive(
    fileobj: IO[bytes], *, limits: ArchiveLimits, video_fps: float | None = None
) -> list[ArchiveImage]:
    """The archive's images with their labels (its videos' frames, at most ``video_fps`` a
    second of each when set); ``ArchiveError`` if anything is wrong."""
    size = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(0)
    if size == 0:
        raise ArchiveError([EntryProblem(reason="the upload is empty")])
    if size > limits.max_bytes:
        reason = f"the archive is {size} bytes; the limit is {limits.max_bytes}"
        raise ArchiveError([EntryProblem(reason=reason)])
    reader = _Reader(fileobj)
    try:
        files = _checked_entries(reader, limits=limits, archive_bytes=size)
        return _images(reader, files, limits=limits, video_fps=video_fps)
    finally:
        reader.close()


def _checked_entries(reader: _Reader, *, limits: ArchiveLimits, archive_bytes: int) -> list[_Entry]:
    problems: list[EntryProblem] = []
    files: list[_Entry] = []
    seen: set[str] = set()
    entries = list(reader.entries(limits.max_entries))
    if len(entries) > limits.max_entries:
        too_many = f"more than {limits.max_entries} entries; split the archive"
        raise ArchiveError([EntryProblem(reason=too_many)])
    total = 0
    for entry in entries:
        problem = _entry_problem(entry, limits=limits)
        if problem is None and entry.name in seen:
            problem = "appears twice in the archive"
        if problem is not None:
            problems.append(EntryProblem(_shown(entry.name), problem))
            continue
        seen.add(entry.name)
        total += entry.size
        if entry.kind == "file" and not _skipped(entry.name):
            files.append(entry)
    if total > limits.max_uncompressed_bytes:
        reason = (
            f"expands to {total} bytes; the limit is {limits.max_uncompressed_bytes} "
            "(a decompression bomb, or split the archive)"
        )
        problems.append(EntryProblem(reason=reason))
    elif total > limits.max_ratio * archive_bytes and total > _READ_CHUNK:
        reason = f"expands {total / archive_bytes:.0f} times its size: a decompression bomb"
        problems.append(EntryProblem(reason=reason))
    if problems:
        raise ArchiveError(problems)
    return files


def _shown(name: str) -> str:
    return name if len(name) <= SHOWN_NAME_LENGTH else name[:SHOWN_NAME_LENGTH] + "..."


def _entry_problem(entry: _Entry, *, limits: ArchiveLimits) -> str | None:
    bad_name = name_problem(entry.name)
    if bad_name is not None:
        return f"the entry's name {bad_name}; rename it"
    path = PurePosixPath(entry.name)
    if entry.name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", entry.name):
        return "an absolute path; entries must be relative"
    if ".." in path.parts or "\\" in entry.name:
        return "a path that leaves the archive's folder ('..' or '\\')"
    if entry.kind == "link":
        return "a link; put the image itself in the archive"
    if entry.kind == "special":
        return "a device, pipe or other special file"
    ratio_ok = entry.compressed is None or entry.size <= limits.max_ratio * max(entry.compressed, 1)
    if entry.kind == "file" and entry.size > _READ_CHUNK and not ratio_ok:
        return f"expands more than {limits.max_ratio:.0f} times: a decompression bomb"
    return None


def _skipped(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def _images(
    reader: _Reader, files: list[_Entry], *, limits: ArchiveLimits, video_fps: float | None
) -> list[ArchiveImage]:
    problems: list[EntryProblem] = []
    manifest_entry = next((f for f in files if f.name in MANIFEST_NAMES), None)
    labels: dict[str, Labels] | None = None
    if manifest_entry is not None:
        try:
            labels = read_manifest(
                manifest_entry.name, reader.read(manifest_entry.name, manifest_entry.size)
            )
        except ValueError as exc:
            raise ArchiveError([EntryProblem(manifest_entry.name, str(exc))]) from exc
    images: list[ArchiveImage] = []
    videos: dict[str, str] = {}  # group -> the video that is it
    files_in: dict[str, set[str]] = {}  # group -> the entries in it
    for entry in files:
        if entry is manifest_entry:
            continue
        try:
            if PurePosixPath(entry.name).suffix.lower() in VIDEO_EXTENSIONS:
                frames = _video(
                    reader, entry, labels=labels, limits=limits, held=images, fps=video_fps
                )
                videos.setdefault(frames[0].group, entry.name)
            else:
                frames = [_image(reader, entry, labels=labels, limits=limits)]
        except ValueError as exc:
            problems.append(EntryProblem(entry.name, str(exc)))
            continue
        images += frames
        files_in.setdefault(frames[0].group, set()).add(entry.name)
    problems += _shared_groups(files_in, videos)
    if labels is not None:
        present = {f.name for f in files}
        problems += [
            EntryProblem(n, "listed in the manifest but not in the archive")
            for n in sorted(set(labels) - present)
        ]
    if not images and not problems:
        problems.append(EntryProblem(reason=f"holds no images ({KNOWN}) or videos ({VIDEOS})"))
    if problems:
        raise ArchiveError(problems)
    return images


def _image(
    reader: _Reader, entry: _Entry, *, labels: dict[str, Labels] | None, limits: ArchiveLimits
) -> ArchiveImage:
    extension = PurePosixPath(entry.name).suffix.lower()
    if extension not in IMAGE_FORMATS:
        raise ValueError(f"neither an image ({KNOWN}) nor a video ({VIDEOS})")
    if labels is None:
        found = labels_from_path(entry.name)
    elif entry.name in labels:
        found = labels[entry.name]
    else:
        raise ValueError("not listed in the manifest; add it or remove it")
    if entry.size == 0:
        raise ValueError("an empty (0-byte) file")
    data = reader.read(entry.name, entry.size)
    _check_decodes(data, expected=IMAGE_FORMATS[extension], max_pixels=limits.max_pixels)
    return ArchiveImage(
        name=entry.name,
        data=data,
        extension=extension,
        label=found.label,
        group=found.group,
        sequence=found.sequence,
    )


def _video(
    reader: _Reader,
    entry: _Entry,
    *,
    labels: dict[str, Labels] | None,
    limits: ArchiveLimits,
    held: list[ArchiveImage],
    fps: float | None,
) -> list[ArchiveImage]:
    """The video's frames, one clip; ``held``: what the archive holds so far (its budget)."""
    if labels is None:
        path = PurePosixPath(entry.name)
        label = labels_from_path(entry.name).label
        group = "/".join(path.parts[1:])[: -len(path.suffix)][:256]
    elif entry.name in labels:
        label, group = labels[entry.name].label, labels[entry.name].group
    else:
        raise ValueError("not listed in the manifest; add it or remove it")
    if entry.size == 0:
        raise ValueError("an empty (0-byte) file")
    budget = VideoBudget(
        frames=limits.max_entries - len(held),
        bytes=limits.max_uncompressed_bytes - sum(len(image.data) for image in held),
        max_pixels=limits.max_pixels,
    )
    return [
        ArchiveImage(
            name=f"{entry.name}#{frame.index}",
            data=frame.jpeg,
            extension=".jpg",
            label=label,
            group=group,
            sequence=frame.index,
            captured_at=frame.captured_at,
        )
        for frame in video_frames(reader.read(entry.name, entry.size), budget=budget, fps=fps)
    ]


def _shared_groups(files_in: dict[str, set[str]], videos: dict[str, str]) -> list[EntryProblem]:
    """A video's group holds its frames only: two videos, or a video and images, in one group
    would interleave their sequences and capture times."""
    return [
        EntryProblem(
            video,
            f"its group {group!r} also holds {len(files_in[group]) - 1} other file(s): a video "
            "is a group of its own (rename it, or give it its own group in the manifest)",
        )
        for group, video in sorted(videos.items())
        if len(files_in[group]) > 1
    ]


def _check_decodes(data: bytes, *, expected: str, max_pixels: int) -> None:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != expected:
                raise ValueError(f"the name says {expected} but the content is {image.format}")
            width, height = image.size
            if width * height > max_pixels:
                raise ValueError(f"{width}x{height} is larger than {max_pixels} pixels")
            image.load()  # decodes every pixel: a truncated file fails here
    except (UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ValueError(f"not a decodable image ({exc})") from exc
    except OSError as exc:
        raise ValueError(f"a truncated or corrupt image ({exc})") from exc
