"""Configuration: a TOML file with one ``[server]`` table and one ``[[cache]]`` per origin.

Every error names the key (``cache[2].origin``) and says what is wrong, so a
user can fix a file without reading this module. The README's configuration
reference documents every key; keep the two together.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ORIGIN_TLS_MODES = ("disable", "prefer", "require", "verify-full")
LOG_FORMATS = ("console", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")
_CACHE_ID = re.compile(r"^[A-Za-z0-9_]{1,63}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {
    None: 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the key."""


@dataclass(frozen=True, slots=True)
class Address:
    """A TCP host and port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CacheConfig:
    """One cache: one origin, reached through one listen address."""

    id: str
    dialect: str
    origin: Address
    listen: Address
    origin_tls: str = "disable"
    origin_ca: Path | None = None
    client_tls_cert: Path | None = None
    client_tls_key: Path | None = None
    default_ttl: float = 300.0
    max_entry_bytes: int = 1 << 20
    memory_budget: int = 64 << 20
    disk_budget: int = 1 << 30
    default: bool = False


@dataclass(frozen=True)
class ServerConfig:
    """The whole process: shared settings and its caches."""

    caches: tuple[CacheConfig, ...]
    cache_dir: Path = field(default_factory=lambda: default_cache_dir())
    log_format: str = "console"
    log_level: str = "info"
    shutdown_grace: float = 10.0
    workers: int = 1

    def caches_by_listener(self) -> dict[Address, list[CacheConfig]]:
        """Caches grouped by listen address; the default cache of each group comes first."""
        groups: dict[Address, list[CacheConfig]] = {}
        for cache in self.caches:
            groups.setdefault(cache.listen, []).append(cache)
        for caches in groups.values():
            caches.sort(key=lambda c: not c.default)
        return groups


def default_cache_dir() -> Path:
    """Where L2 lives unless configured: ``$XDG_CACHE_HOME/wirecache`` or ``~/.cache/wirecache``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wirecache"


def parse_address(value: object, key: str, default_port: int | None = None) -> Address:
    """Parse ``HOST:PORT`` (``[v6]:PORT`` for IPv6; the port may default)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}: expected HOST:PORT, got {value!r}")
    text = value.strip()
    m = re.match(r"^\[([^\]]+)\](?::(\d+))?$", text) or re.match(r"^([^:\[\]]+)(?::(\d+))?$", text)
    if not m:
        raise ConfigError(f"{key}: expected HOST:PORT, got {value!r}")
    host, port = m.group(1), m.group(2)
    if port is None:
        if default_port is None:
            raise ConfigError(f"{key}: no port in {value!r}; write HOST:PORT")
        return Address(host, default_port)
    if not 0 < int(port) < 65536:
        raise ConfigError(f"{key}: port {port} is out of range 1-65535")
    return Address(host, int(port))


def parse_size(value: object, key: str) -> int:
    """Parse a byte size: an integer or a string like ``64MiB``, ``1.5 GB``."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a size like 64MiB, got {value!r}")
    if isinstance(value, int) and value >= 0:
        return value
    m = _SIZE.match(value) if isinstance(value, str) else None
    if not m:
        raise ConfigError(f"{key}: expected a size like 64MiB or 1GB, got {value!r}")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _UNITS[unit])


def _number(value: object, key: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"{key}: expected a number >= {minimum:g}, got {value!r}")
    return float(value)


def _choice(value: object, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def _path(value: object, key: str, base: Path) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key}: expected a file path, got {value!r}")
    path = (base / os.path.expanduser(value)).resolve()
    return path


def _existing_file(value: object, key: str, base: Path) -> Path:
    path = _path(value, key, base)
    if not path.is_file():
        raise ConfigError(f"{key}: file {str(path)!r} does not exist")
    return path


_CACHE_KEYS = {
    "id", "dialect", "origin", "listen", "origin_tls", "origin_ca", "client_tls_cert",
    "client_tls_key", "default_ttl", "max_entry_bytes", "memory_budget", "disk_budget", "default",
}  # fmt: skip
_SERVER_KEYS = {"cache_dir", "log_format", "log_level", "shutdown_grace", "workers"}


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; known keys are {', '.join(sorted(allowed))}"
        )


def cache_config(
    raw: dict[str, Any],
    where: str,
    base: Path,
    dialect_ports: dict[str, tuple[int, int]],
) -> CacheConfig:
    """Validate one ``[[cache]]`` table.

    ``dialect_ports`` maps each known dialect to its (origin, listen) default
    ports so that ``origin = "db.example.com"`` works.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table")
    _check_keys(raw, _CACHE_KEYS, where)
    cache_id = raw.get("id")
    if not isinstance(cache_id, str) or not _CACHE_ID.match(cache_id):
        raise ConfigError(
            f"{where}.id: expected 1-63 letters, digits or underscores, got {cache_id!r} "
            "(the id is what clients put in application_name or in front of the user name)"
        )
    where = f"{where} ({cache_id})"
    dialect = raw.get("dialect")
    if dialect not in dialect_ports:
        known = ", ".join(sorted(dialect_ports)) or "none installed"
        raise ConfigError(f"{where}.dialect: unknown dialect {dialect!r}; installed: {known}")
    origin_port, listen_port = dialect_ports[dialect]
    if "origin" not in raw:
        raise ConfigError(f'{where}.origin: missing; write origin = "HOST:PORT"')
    kwargs: dict[str, Any] = {
        "id": cache_id,
        "dialect": dialect,
        "origin": parse_address(raw["origin"], f"{where}.origin", origin_port),
        "listen": parse_address(raw.get("listen", f"127.0.0.1:{listen_port}"), f"{where}.listen"),
    }
    tls = _choice(raw.get("origin_tls", "disable"), f"{where}.origin_tls", ORIGIN_TLS_MODES)
    kwargs["origin_tls"] = tls
    if "origin_ca" in raw:
        kwargs["origin_ca"] = _existing_file(raw["origin_ca"], f"{where}.origin_ca", base)
    elif tls == "verify-full":
        pass  # the system's trust store verifies the origin
    cert, key = raw.get("client_tls_cert"), raw.get("client_tls_key")
    if (cert is None) != (key is None):
        raise ConfigError(f"{where}: client_tls_cert and client_tls_key must be given together")
    if cert is not None:
        kwargs["client_tls_cert"] = _existing_file(cert, f"{where}.client_tls_cert", base)
        kwargs["client_tls_key"] = _existing_file(key, f"{where}.client_tls_key", base)
    if "default_ttl" in raw:
        kwargs["default_ttl"] = _number(raw["default_ttl"], f"{where}.default_ttl")
    for size_key in ("max_entry_bytes", "memory_budget", "disk_budget"):
        if size_key in raw:
            kwargs[size_key] = parse_size(raw[size_key], f"{where}.{size_key}")
    if "default" in raw:
        if not isinstance(raw["default"], bool):
            raise ConfigError(f"{where}.default: expected true or false, got {raw['default']!r}")
        kwargs["default"] = raw["default"]
    return CacheConfig(**kwargs)


def server_config(
    data: dict[str, Any], base: Path, dialect_ports: dict[str, tuple[int, int]]
) -> ServerConfig:
    """Validate a whole configuration document (already parsed from TOML)."""
    _check_keys(data, {"server", "cache"}, "top level")
    server = data.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError("server: expected a table [server]")
    _check_keys(server, _SERVER_KEYS, "server")
    raw_caches = data.get("cache")
    if not isinstance(raw_caches, list) or not raw_caches:
        raise ConfigError("cache: no cache configured; add at least one [[cache]] table")
    caches = tuple(
        cache_config(raw, f"cache[{i}]", base, dialect_ports) for i, raw in enumerate(raw_caches)
    )
    _check_caches(caches)
    kwargs: dict[str, Any] = {"caches": caches}
    if "cache_dir" in server:
        kwargs["cache_dir"] = _path(server["cache_dir"], "server.cache_dir", base)
    if "log_format" in server:
        kwargs["log_format"] = _choice(server["log_format"], "server.log_format", LOG_FORMATS)
    if "log_level" in server:
        kwargs["log_level"] = _choice(server["log_level"], "server.log_level", LOG_LEVELS)
    if "shutdown_grace" in server:
        kwargs["shutdown_grace"] = _number(server["shutdown_grace"], "server.shutdown_grace")
    if "workers" in server:
        workers = server["workers"]
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"server.workers: expected an integer >= 1, got {workers!r}")
        kwargs["workers"] = workers
    return ServerConfig(**kwargs)


def _check_caches(caches: tuple[CacheConfig, ...]) -> None:
    seen: set[str] = set()
    for cache in caches:
        if cache.id.lower() in seen:
            raise ConfigError(f"cache ({cache.id}).id: the id is used by two caches")
        seen.add(cache.id.lower())
    groups: dict[Address, list[CacheConfig]] = {}
    for cache in caches:
        groups.setdefault(cache.listen, []).append(cache)
    for listen, group in groups.items():
        if len({c.dialect for c in group}) > 1:
            raise ConfigError(
                f"listen {listen}: caches of different dialects share this address; "
                "give each dialect its own listen address"
            )
        if sum(c.default for c in group) > 1:
            raise ConfigError(f"listen {listen}: more than one cache says default = true")
        if len({(c.client_tls_cert, c.client_tls_key) for c in group}) > 1:
            raise ConfigError(
                f"listen {listen}: caches sharing a listen address must use the same "
                "client_tls_cert and client_tls_key"
            )


def load(path: Path, dialect_ports: dict[str, tuple[int, int]]) -> ServerConfig:
    """Read and validate a TOML configuration file."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    return server_config(data, path.parent, dialect_ports)
