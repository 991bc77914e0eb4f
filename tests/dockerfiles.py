"""The service Dockerfiles and the extras of pyproject.toml they install, as data, so tests repeat
the images' install steps instead of restating them (tests/unit/test_dependencies.py,
tests/integration/test_images.py, tests/unit/test_boundaries.py)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from vigil_shared.settings import REPO_ROOT

SERVICES = ("api", "ingest", "inference", "trainer")
_INSTALL = re.compile(r"(?P<uv>uv )?pip install (?P<args>.+)")
PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


@dataclass(frozen=True)
class Install:
    """One ``pip install`` or ``uv pip install`` command of a ``RUN`` step."""

    uv: bool
    args: tuple[str, ...]
    """Its arguments, e.g. ``("--system", "--no-cache", ".[api]")``."""

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(a for a in self.args if not a.startswith("-"))


@dataclass(frozen=True)
class Dockerfile:
    service: str
    copies: tuple[tuple[str, str], ...]
    """``COPY`` sources and destinations, relative to the build context and ``WORKDIR``."""
    installs: tuple[Install, ...]
    """The install commands of the ``RUN`` steps, in order: uv, then the project with uv."""
    cmd: tuple[str, ...]

    @property
    def project(self) -> Install:
        """The install of the project itself (``.[api]``); the one that brings the service."""
        [install] = [i for i in self.installs if any(t.startswith(".") for t in i.targets)]
        return install

    @property
    def target(self) -> str:
        [target] = self.project.targets
        return target

    @property
    def extras(self) -> tuple[str, ...]:
        """The extras of pyproject.toml the image installs: ``.[api]`` is ``("api",)``."""
        match = re.fullmatch(r"\.\[(?P<extras>[\w,-]+)\]", self.target)
        assert match, f"{self.service}: installs {self.target!r}, not the project's extras"
        return tuple(match["extras"].split(","))


def instructions(path: Path) -> Iterator[tuple[str, str]]:
    """A Dockerfile's instructions and their arguments, continuation lines (``\\``) joined."""
    pending = ""
    for line in path.read_text().splitlines():
        if line.startswith("#") and not pending:
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        instruction, _, rest = (pending + line).strip().partition(" ")
        pending = ""
        if instruction:
            yield instruction, rest


def read_dockerfile(service: str) -> Dockerfile:
    path = REPO_ROOT / "services" / service / "Dockerfile"
    copies, installs, cmd = [], [], None
    for instruction, rest in instructions(path):
        if instruction == "COPY":
            *sources, destination = shlex.split(rest)
            copies += [(source, _destination(source, destination)) for source in sources]
        elif instruction == "RUN":
            for command in rest.split("&&"):
                if match := _INSTALL.fullmatch(" ".join(command.split())):
                    installs.append(Install(bool(match["uv"]), tuple(shlex.split(match["args"]))))
        elif instruction == "CMD":
            cmd = tuple(json.loads(rest))
    assert installs and cmd is not None, f"{path}: no pip install or no CMD"
    return Dockerfile(service, tuple(copies), tuple(installs), cmd)


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
