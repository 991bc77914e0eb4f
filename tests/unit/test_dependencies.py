"""Each image declares what its service imports: every third-party module reachable from the
service's code is installed by the extras its Dockerfile names (with their own dependencies).

The imports are read from the source (functions' bodies too, following ``vigil_*`` modules
across packages; ``if TYPE_CHECKING:`` blocks left out), so an import that only runs on one
path counts as much as one at the top. Drivers loaded by name at run time are added by hand
(``RUNTIME_LOADED``). What this cannot see, tests/integration/test_images.py does: it installs
every image in a clean virtualenv with the uv the Dockerfiles and scripts/bootstrap.sh pin (torch
linked from uv's cache) and starts it; this check runs in seconds, without the servers.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.dockerfiles import PROJECT, SERVICES, extra_requirements, read_dockerfile
from vigil_shared.settings import REPO_ROOT

PACKAGES = {
    "vigil_shared": REPO_ROOT / "shared" / "vigil_shared",
    **{f"vigil_{s}": REPO_ROOT / "services" / s / f"vigil_{s}" for s in SERVICES},
    "vigil_cli": REPO_ROOT / "cli" / "vigil_cli",
}
RUNTIME_LOADED = {
    "sqlalchemy": ("psycopg",),  # the driver VIGIL_DATABASE_URL names (postgresql+psycopg)
    "celery": ("redis",),  # kombu's transport for VIGIL_REDIS_URL (redis://)
}


def module_file(name: str) -> Path | None:
    top, *rest = name.split(".")
    base = PACKAGES.get(top)
    if base is None:
        return None
    path = base.joinpath(*rest)
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (imported for the type checker only)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        }:
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(path: Path, module: str) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@cache
def third_party_imports(service: str) -> dict[str, str]:
    """Top-level third-party modules reachable from ``vigil_<service>``, each with a module of
    ours that imports it."""
    root = PACKAGES[f"vigil_{service}"]
    todo = [
        ".".join([f"vigil_{service}", *p.relative_to(root).with_suffix("").parts]).removesuffix(
            ".__init__"
        )
        for p in root.rglob("*.py")
    ]
    seen: set[str] = set()
    found: dict[str, str] = {}
    while todo:
        module = todo.pop()
        path = module_file(module)
        if module in seen or path is None:
            continue
        seen.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run too
        for name in imports_of(path, module):
            top = name.partition(".")[0]
            if top in PACKAGES:
                todo.append(name)
            elif top not in sys.stdlib_module_names:
                found.setdefault(top, module)
    return found


def installed_closure(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements install, with their dependencies, as pip would
    (each dependency's marker evaluated here, for the extras its dependant was asked with)."""
    closure: set[str] = set()
    done: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(requirement.extras)) in done:
            continue
        done.add((name, frozenset(requirement.extras)))
        closure.add(name)
        try:
            texts = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (another platform's): nothing of ours imports it
        for text in texts:
            dependency = Requirement(text)
            extras = ("", *requirement.extras)
            if dependency.marker is None or any(
                dependency.marker.evaluate({"extra": e}) for e in extras
            ):
                todo.append(dependency)
    return closure


def declared(service: str) -> set[str]:
    # The CLI has no image: ``pip install 'vigil[cli]'`` is how it is installed.
    extras = ("cli",) if service == "cli" else read_dockerfile(service).extras
    base = [Requirement(text) for text in PROJECT["dependencies"]]
    return installed_closure(base + [r for e in extras for r in extra_requirements(e)])


@cache
def _distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def distributions_of(module: str) -> set[str]:
    names = _distributions().get(module)
    assert names, f"no installed distribution provides {module!r}: add it to pyproject.toml"
    return {canonicalize_name(n) for n in names}


@pytest.mark.parametrize("service", [*SERVICES, "cli"])
def test_every_import_is_installed_by_the_image(service: str) -> None:
    have = declared(service)
    missing = {}
    for module, importer in third_party_imports(service).items():
        needs = distributions_of(module) | {
            canonicalize_name(d) for d in RUNTIME_LOADED.get(module, ())
        }
        for distribution in needs - have:
            missing[distribution] = f"{module} (imported by {importer})"
    installs = "pip install 'vigil[cli]'" if service == "cli" else f"services/{service}/Dockerfile"
    assert not missing, (
        f"{installs} lacks {missing}: add them to the {service!r} extra in pyproject.toml"
    )


def test_the_api_and_ingest_images_leave_torch_out() -> None:
    for service in ("api", "ingest"):
        assert "torch" not in declared(service), f"{service} would install gigabytes of torch"
        assert "torch" not in third_party_imports(service)


def test_the_check_sees_imports_inside_functions() -> None:
    """The trainer's worker is imported inside ``run_worker``: Celery must still be found."""
    assert third_party_imports("trainer")["celery"].startswith("vigil_trainer")
    assert "httpx" in third_party_imports("ingest")  # what the ingest image once lacked
    # TYPE_CHECKING imports do not count: the API's loop runs the event lifecycle, which names
    # torch only for typing.
    assert "torch" not in third_party_imports("api")


def test_dockerignore_keeps_secrets_and_caches_out_of_images() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv", ".stack", "**/__pycache__"} <= ignored
    for service in SERVICES:
        for source, _ in read_dockerfile(service).copies:
            assert source not in ignored, f"{service} copies {source}, which .dockerignore drops"


def test_every_image_installs_with_the_uv_bootstrap_pins() -> None:
    """One uv for the images and the development environment: the image test links torch from
    the cache that bootstrap.sh's uv filled, and a Dockerfile that installed the project with
    plain pip would pass that test while the images built differently."""
    bootstrap = (REPO_ROOT / "scripts" / "bootstrap.sh").read_text()
    [version] = re.findall(r"^UV_VERSION=(\S+)", bootstrap, flags=re.MULTILINE)
    for service in SERVICES:
        dockerfile = read_dockerfile(service)
        tools = [i for i in dockerfile.installs if not i.uv]
        assert [i.targets for i in tools] == [(f"uv=={version}",)], f"{service}: {tools}"
        assert dockerfile.project.uv, f"{service} installs the project without uv"
