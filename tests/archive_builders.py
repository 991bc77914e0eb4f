"""Dataset archives for tests, good and hostile, built in memory."""

from __future__ import annotations

import io
import tarfile
import zipfile

from tests.factories import scene_jpeg

Entries = dict[str, bytes]


def zip_bytes(entries: Entries, *, symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0x20
            archive.writestr(info, target)
    return buffer.getvalue()


def tar_bytes(
    entries: Entries, *, compress: bool = True, symlinks: dict[str, str] | None = None
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if compress else "w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return buffer.getvalue()


def good_entries(normal: int = 3, abnormal: int = 2) -> Entries:
    entries = {f"normal/clip01_{n:04d}.jpg": scene_jpeg(n) for n in range(normal)}
    entries |= {f"abnormal/clip02/{n:03d}.jpg": scene_jpeg(20 + n) for n in range(abnormal)}
    return entries


def truncated_jpeg() -> bytes:
    data = scene_jpeg(5)
    return data[: len(data) // 2]


def bomb_entry(megabytes: int = 8) -> bytes:
    return b"\0" * (megabytes * 1024 * 1024)
