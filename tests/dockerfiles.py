"""The service Dockerfiles and the extras of pyproject.toml they install, as data, so tests repeat
the images' install steps instead of restating them (tests/unit/test_dependencies.py,
tests/integration/test_images.py, tests/unit/test_boundaries.py)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from vigil_shared.settings import REPO_ROOT

SERVICES = ("api", "ingest", "inference", "trainer")
_PIP_INSTALL = re.compile(r"pip install (?P<args>[^&]+?)\s*(?:&&|$)")
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


@dataclass(frozen=True)
class Dockerfile:
    service: str
    copies: tuple[tuple[str, str], ...]
    """``COPY`` sources and destinations, relative to the build context and ``WORKDIR``."""
    pip_args: tuple[str, ...]
    """The arguments of the ``RUN pip install``, e.g. ``("--no-cache-dir", ".[api]")``."""
    cmd: tuple[str, ...]

    @property
    def target(self) -> str:
        [target] = [a for a in self.pip_args if not a.startswith("-")]
        return target

    @property
    def extras(self) -> tuple[str, ...]:
        """The extras of pyproject.toml the image installs: ``.[api]`` is ``("api",)``."""
        match = re.fullmatch(r"\.\[(?P<extras>[\w,-]+)\]", self.target)
        assert match, f"{self.service}: pip installs {self.target!r}, not the project's extras"
        return tuple(match["extras"].split(","))


def read_dockerfile(service: str) -> Dockerfile:
    path = REPO_ROOT / "services" / service / "Dockerfile"
    copies, pip_args, cmd = [], None, None
    for line in path.read_text().splitlines():
        instruction, _, rest = line.partition(" ")
        if instruction == "COPY":
            *sources, destination = shlex.split(rest)
            copies += [(source, _destination(source, destination)) for source in sources]
        elif instruction == "RUN" and (match := _PIP_INSTALL.search(rest)):
            pip_args = tuple(shlex.split(match["args"]))
        elif instruction == "CMD":
            cmd = tuple(json.loads(rest))
    assert pip_args is not None and cmd is not None, f"{path}: no pip install or no CMD"
    return Dockerfile(service, tuple(copies), pip_args, cmd)


def _destination(source: str, destination: str) -> str:
    """Where a ``COPY`` puts ``source``: into a directory when the destination ends in ``/``."""
    if destination.endswith("/"):
        return str(Path(destination) / Path(source).name)
    return destination


def extra_requirements(extra: str) -> list[Requirement]:
    """The project's requirements with ``extra``, self-references (``vigil[kafka]``) expanded."""
    requirements = []
    for text in PROJECT["optional-dependencies"][extra]:
        requirement = Requirement(text)
        if canonicalize_name(requirement.name) == PROJECT["name"]:
            requirements += [r for e in requirement.extras for r in extra_requirements(e)]
        else:
            requirements.append(requirement)
    return requirements
