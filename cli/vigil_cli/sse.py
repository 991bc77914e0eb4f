"""Server-Sent Events as the HTML standard parses them, over the lines of a response.

Only what ``GET /api/v1/events/stream`` sends is needed (``id``, ``event``, ``data``, ``retry``,
comments), but the rules are the standard's: a blank line dispatches the message, several
``data`` lines join with newlines, one space after the colon is dropped, comments are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    event: str
    data: str
    id: str | None
    """The last id seen on the stream so far (what ``Last-Event-ID`` resumes from)."""


def messages(lines: Iterable[str]) -> Iterator[Message]:
    event, data, last_id = "", list[str](), None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield Message(event=event or "message", data="\n".join(data), id=last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\0" not in value:
            last_id = value
