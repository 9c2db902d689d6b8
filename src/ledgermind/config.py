"""Settings, read once: command-line flags over environment variables over ``LEDGERMIND_HOME/config.toml``.

Environment variables: LEDGERMIND_HOME (data folder, default ~/.ledgermind), LEDGERMIND_ACCOUNT (the
acting account's address), LEDGERMIND_PASSWORD (keystore password; dev accounts use an empty one),
LEDGERMIND_LOG_MAX_BATCH / LEDGERMIND_LOG_MAX_LATENCY (group commit), LEDGERMIND_BUSY_TIMEOUT (seconds
to wait for another process's write lock), LEDGERMIND_RPC_URL (an external EVM chain instead of the
embedded one), LEDGERMIND_CHAIN_ID (refuse any other chain), LEDGERMIND_ANCHOR_EVERY /
LEDGERMIND_ANCHOR_INTERVAL (anchor after that many new entries or seconds), LEDGERMIND_AUTO_ANCHOR=0
(anchor only on demand).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledgermind.errors import InvalidInputError

DEFAULT_HOME = Path("~/.ledgermind")
_KNOWN = {
    "account", "password", "log_max_batch", "log_max_latency", "busy_timeout", "rpc_url", "chain_id",
    "anchor_every_entries", "anchor_every_seconds", "auto_anchor",
}


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if str(value).strip().lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean, got {value!r}")


def _opt_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


@dataclass(frozen=True)
class Settings:
    home: Path
    account: str | None = None
    password: str | None = None
    log_max_batch: int = 50_000
    log_max_latency: float = 0.0
    busy_timeout: float = 5.0  # seconds to wait for another process's write lock before giving up
    rpc_url: str | None = None  # None: the embedded chain (through a running node if there is one)
    chain_id: int | None = None  # if set, refuse a chain that reports another id
    anchor_every_entries: int = 1000
    anchor_every_seconds: float = 60.0
    auto_anchor: bool = True  # anchor after writes when the policy says so (off: only 'ledgermind anchor')
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.home / "log.sqlite"

    @property
    def log_key_path(self) -> Path:
        return self.home / "log.key"

    @property
    def index_path(self) -> Path:
        return self.home / "index.sqlite"

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keystore"

    @property
    def blobs_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def chain_dir(self) -> Path:
        return self.home / "chain"

    @property
    def deployments_dir(self) -> Path:
        return self.home / "deployments"

    @property
    def anchors_path(self) -> Path:
        return self.home / "anchors.sqlite"

    @property
    def fingerprint_cache_path(self) -> Path:
        return self.home / "fingerprints.sqlite"


def load_settings(home: str | os.PathLike[str] | None = None, **flags: Any) -> Settings:
    """Resolve settings. ``flags`` set to None fall through to the environment, then the config file."""
    home_path = Path(home or os.environ.get("LEDGERMIND_HOME") or DEFAULT_HOME).expanduser()
    if home_path.exists() and not home_path.is_dir():
        raise InvalidInputError(f"LEDGERMIND_HOME {home_path} is not a folder")
    file_values: dict[str, Any] = {}
    config = home_path / "config.toml"
    if config.is_file():
        try:
            file_values = tomllib.loads(config.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise InvalidInputError(f"{config} is not valid TOML: {e}") from e

    def pick(name: str, env: str | None, default: Any) -> Any:
        if flags.get(name) is not None:
            return flags[name]
        if env and os.environ.get(env) is not None:
            return os.environ[env]
        return file_values.get(name, default)

    try:
        return Settings(
            home=home_path,
            account=pick("account", "LEDGERMIND_ACCOUNT", None),
            password=pick("password", "LEDGERMIND_PASSWORD", None),
            log_max_batch=int(pick("log_max_batch", "LEDGERMIND_LOG_MAX_BATCH", 50_000)),
            log_max_latency=float(pick("log_max_latency", "LEDGERMIND_LOG_MAX_LATENCY", 0.0)),
            busy_timeout=float(pick("busy_timeout", "LEDGERMIND_BUSY_TIMEOUT", 5.0)),
            rpc_url=pick("rpc_url", "LEDGERMIND_RPC_URL", None) or None,
            chain_id=_opt_int(pick("chain_id", "LEDGERMIND_CHAIN_ID", None)),
            anchor_every_entries=int(pick("anchor_every_entries", "LEDGERMIND_ANCHOR_EVERY", 1000)),
            anchor_every_seconds=float(pick("anchor_every_seconds", "LEDGERMIND_ANCHOR_INTERVAL", 60.0)),
            auto_anchor=_bool(pick("auto_anchor", "LEDGERMIND_AUTO_ANCHOR", True)),
            extra={k: v for k, v in file_values.items() if k not in _KNOWN},
        )
    except ValueError as e:
        raise InvalidInputError(f"bad setting: {e}") from e
