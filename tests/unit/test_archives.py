"""Dataset archives: labels from folders or a manifest, and every hostile entry refused by name
before anything could be stored."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from tests.factories import (
    Entries,
    bomb_entry,
    good_entries,
    scene_jpeg,
    tar_bytes,
    truncated_jpeg,
    zip_bytes,
)
from vigil_api.domain.archives import ArchiveError, ArchiveLimits, read_archive

LIMITS = ArchiveLimits(
    max_bytes=10 * 1024**2,
    max_entries=50,
    max_uncompressed_bytes=64 * 1024**2,
    max_ratio=100,
    max_pixels=10_000_000,
)


def problems_of(data: bytes, limits: ArchiveLimits = LIMITS) -> dict[str, str]:
    with pytest.raises(ArchiveError) as caught:
        read_archive(io.BytesIO(data), limits=limits)
    assert "nothing was stored" in str(caught.value)
    return {p.entry: p.reason for p in caught.value.problems}


def plain_tar(entries: Entries) -> bytes:
    return tar_bytes(entries, compress=False)


@pytest.mark.parametrize("build", [zip_bytes, tar_bytes, plain_tar])
def test_folders_give_labels_groups_and_sequences(build: Callable[[Entries], bytes]) -> None:
    images = read_archive(io.BytesIO(build(good_entries())), limits=LIMITS)
    by_name = {i.name: i for i in images}
    assert len(images) == 5
    first = by_name["normal/clip01_0002.jpg"]
    assert (first.label, first.group, first.sequence, first.extension) == (
        "normal",
        "clip01",
        2,
        ".jpg",
    )
    nested = by_name["abnormal/clip02/001.jpg"]
    assert (nested.label, nested.group, nested.sequence) == ("abnormal", "clip02", 1)
    assert nested.data == scene_jpeg(21)


def test_a_manifest_gives_labels_and_groups() -> None:
    csv_text = "file,label,group\na.jpg,normal,gate\nb/c.jpg,person,\n"
    entries = {"a.jpg": scene_jpeg(1), "b/c.jpg": scene_jpeg(2), "manifest.csv": csv_text.encode()}
    images = {i.name: i for i in read_archive(io.BytesIO(zip_bytes(entries)), limits=LIMITS)}
    assert (images["a.jpg"].label, images["a.jpg"].group) == ("normal", "gate")
    assert (images["b/c.jpg"].label, images["b/c.jpg"].group) == ("person", "c")


def test_a_manifest_must_match_the_files() -> None:
    manifest = (
        b'{"items": [{"file": "a.jpg", "label": "normal"}, {"file": "gone.jpg", "label": "x"}]}'
    )
    entries = {"a.jpg": scene_jpeg(1), "extra.jpg": scene_jpeg(2), "manifest.json": manifest}
    problems = problems_of(zip_bytes(entries))
    assert "not listed in the manifest" in problems["extra.jpg"]
    assert "not in the archive" in problems["gone.jpg"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../escape.jpg", "leaves the archive's folder"),
        ("normal/../../escape.jpg", "leaves the archive's folder"),
        ("/etc/cron.d/evil.jpg", "an absolute path"),
        ("C:/evil.jpg", "an absolute path"),
    ],
)
def test_path_traversal_is_refused(name: str, reason: str) -> None:
    for build in (zip_bytes, tar_bytes):
        problems = problems_of(build(good_entries() | {name: scene_jpeg(1)}))
        assert reason in problems[name]


def test_links_are_refused_in_zip_and_tar() -> None:
    links = {"normal/link.jpg": "/etc/passwd"}
    assert "a link" in problems_of(zip_bytes(good_entries(), symlinks=links))["normal/link.jpg"]
    assert "a link" in problems_of(tar_bytes(good_entries(), symlinks=links))["normal/link.jpg"]


def test_a_zip_bomb_is_refused() -> None:
    problems = problems_of(zip_bytes(good_entries() | {"normal/bomb.jpg": bomb_entry()}))
    assert "decompression bomb" in problems["normal/bomb.jpg"]


def test_a_tar_gz_that_expands_too_much_is_refused() -> None:
    problems = problems_of(tar_bytes(good_entries() | {"normal/bomb.jpg": bomb_entry()}))
    assert "decompression bomb" in problems["(archive)"]


def test_bad_images_are_each_named_in_one_error() -> None:
    entries = good_entries() | {
        "normal/truncated.jpg": truncated_jpeg(),
        "normal/empty.jpg": b"",
        "normal/notes.txt": b"hello",
        "normal/fake.png": b"not a png at all",
        "loose.jpg": scene_jpeg(3),
        "bad label!/a.jpg": scene_jpeg(4),
    }
    problems = problems_of(zip_bytes(entries))
    assert "truncated or corrupt" in problems["normal/truncated.jpg"]
    assert "0-byte" in problems["normal/empty.jpg"]
    assert "neither an image" in problems["normal/notes.txt"]
    assert "not a decodable image" in problems["normal/fake.png"]
    assert "has no label" in problems["loose.jpg"]
    assert "must be 1-64 letters" in problems["bad label!/a.jpg"]
    assert "normal/clip01_0000.jpg" not in problems


def test_count_and_size_limits() -> None:
    many = {f"normal/{n}.jpg": scene_jpeg(1) for n in range(LIMITS.max_entries + 1)}
    assert "more than 50 entries" in problems_of(zip_bytes(many))["(archive)"]
    assert "more than 50 entries" in problems_of(tar_bytes(many))["(archive)"]
    small = ArchiveLimits(**{**LIMITS.__dict__, "max_bytes": 100})
    assert "the limit is 100" in problems_of(zip_bytes(good_entries()), small)["(archive)"]
    assert "not a zip or tar" in problems_of(b"plain bytes, no archive")["(archive)"]
    assert "empty" in problems_of(b"")["(archive)"]


def test_hidden_files_are_skipped() -> None:
    entries = good_entries() | {"__MACOSX/normal/._a.jpg": b"junk", "normal/.DS_Store": b"x"}
    assert len(read_archive(io.BytesIO(zip_bytes(entries)), limits=LIMITS)) == 5
