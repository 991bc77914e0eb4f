"""Where an archive's images get their labels, groups and sequence numbers: a ``manifest.json``
or ``manifest.csv`` at the archive's root listing each image, or else each image's path.

From a path, the label is the top folder (``normal/clip01_0003.jpg`` → ``normal``); the group
(the unit evaluation holds out) is the folder below the label (``normal/clip01/0003.jpg`` →
``clip01``) or else the file name without a trailing frame number (``clip01_0003`` →
``clip01``); that number is the sequence. A manifest is untrusted JSON or CSV: it is checked
for depth, NUL characters and huge numbers before it is read (``json_problem``), and its file
names and groups as names.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from vigil_shared.datasets import LABEL_PATTERN
from vigil_shared.schemas.inputs import INT64_MAX, json_problem, name_problem

MANIFEST_NAMES = ("manifest.json", "manifest.csv")
LABEL = re.compile(LABEL_PATTERN)
FRAME_NUMBER = re.compile(r"^(?P<prefix>.*?)[_-]?(?P<number>\d+)$")


@dataclass(frozen=True)
class Labels:
    label: str
    group: str
    sequence: int | None


def _split_stem(stem: str) -> tuple[str, int | None]:
    match = FRAME_NUMBER.match(stem)
    if match is None or int(match.group("number")) > INT64_MAX:  # not a frame number
        return stem, None
    return match.group("prefix") or stem, int(match.group("number"))


def labels_from_path(name: str) -> Labels:
    parts = PurePosixPath(name).parts
    if len(parts) < 2:
        raise ValueError(
            "has no label: put it in a folder named after its label (normal/...) or list it "
            "in manifest.json or manifest.csv"
        )
    label = _valid_label(parts[0])
    prefix, sequence = _split_stem(PurePosixPath(name).stem)
    group = "/".join(parts[1:-1]) if len(parts) > 2 else prefix
    return Labels(label=label, group=group[:256], sequence=sequence)


def _valid_label(label: str) -> str:
    if not LABEL.fullmatch(label):
        raise ValueError(
            f"label {label!r} must be 1-64 letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return label


def read_manifest(name: str, data: bytes) -> dict[str, Labels]:
    """``{"items": [{"file", "label", "group"?, "sequence"?}]}`` or a CSV with those columns."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError("is not UTF-8 text") from exc
    if name.endswith(".json"):
        refused = json_problem(text)
        if refused is not None:
            where = ".".join(str(part) for part in refused[0])
            raise ValueError(f"is refused{' at ' + where if where else ''}: it {refused[1]}")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON ({exc})") from exc
        rows = document.get("items") if isinstance(document, dict) else document
        if not isinstance(rows, list):
            raise ValueError('must be {"items": [{"file": ..., "label": ...}, ...]}')
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    labels: dict[str, Labels] = {}
    for number, row in enumerate(rows, start=1):
        labels.update(_manifest_row(row, number))
    return labels


def _manifest_row(row: Any, number: int) -> dict[str, Labels]:
    if not isinstance(row, dict) or not row.get("file") or not row.get("label"):
        raise ValueError(f"item {number} needs 'file' and 'label'")
    file = str(row["file"])
    prefix, number_in_name = _split_stem(PurePosixPath(file).stem)
    sequence = row.get("sequence")
    try:
        parsed = int(sequence) if sequence not in (None, "") else number_in_name
    except ValueError as exc:
        raise ValueError(f"item {number}: sequence {sequence!r} is not a whole number") from exc
    if parsed is not None and not 0 <= parsed <= INT64_MAX:
        raise ValueError(f"item {number}: sequence must be a whole number from 0 to {INT64_MAX}")
    try:
        label = _valid_label(str(row["label"]))
    except ValueError as exc:
        raise ValueError(f"item {number}: {exc}") from exc
    group = str(row.get("group") or "") or prefix
    for what, value in (("file", file), ("group", group)):
        bad_name = name_problem(value)
        if bad_name is not None:
            raise ValueError(f"item {number}: its {what} {bad_name}")
    return {file: Labels(label=label, group=group[:256], sequence=parsed)}
