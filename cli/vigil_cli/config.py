"""Where the CLI finds the API and its key: ``vigil login`` writes them once to a file that only
its owner can read; ``VIGIL_URL`` and ``VIGIL_API_KEY`` override the file for one shell.

The file is ``$VIGIL_CONFIG``, else ``$XDG_CONFIG_HOME/vigil/config.toml``, else
``~/.config/vigil/config.toml``; it is written mode 600 in a mode 700 folder, as ssh keeps keys.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
URL_VARIABLE = "VIGIL_URL"
KEY_VARIABLE = "VIGIL_API_KEY"


class ConfigError(Exception):
    """The configuration file cannot be read; the message says which file and why."""


@dataclass(frozen=True)
class Config:
    url: str
    key: str | None


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("VIGIL_CONFIG"):
        return Path(env["VIGIL_CONFIG"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "vigil" / "config.toml"


def read_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix it or run vigil login again") from exc
    return {k: v for k, v in data.items() if k in {"url", "key"} and isinstance(v, str)}


def load(environ: Mapping[str, str] | None = None) -> Config:
    """The file's values, each overridden by its environment variable when that is set."""
    env = os.environ if environ is None else environ
    stored = read_file(config_path(env))
    url = env.get(URL_VARIABLE) or stored.get("url") or DEFAULT_URL
    key = env.get(KEY_VARIABLE) or stored.get("key")
    return Config(url=url.rstrip("/"), key=key)


def save(config: Config, environ: Mapping[str, str] | None = None) -> Path:
    """Write the file readable by its owner only, whatever the umask or an older file's mode."""
    path = config_path(environ)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    lines = [f"url = {json.dumps(config.url)}"]  # a JSON string is a TOML basic string
    if config.key is not None:
        lines.append(f"key = {json.dumps(config.key)}")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("# written by vigil login; the key is a secret: keep this file mode 600\n")
        handle.write("\n".join(lines) + "\n")
    return path
