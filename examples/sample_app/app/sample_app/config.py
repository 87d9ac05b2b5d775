"""Configuration from the environment (the env file systemd loads)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional

TRUE_VALUES = {"1", "true", "yes", "on"}


def env_flag(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in TRUE_VALUES


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Config:
    database_url: str = ""
    redis_url: str = ""
    maintenance_mode: bool = False
    read_only_mode: bool = False
    queue_pending_degraded: int = 100
    queue_failed_degraded: int = 50
    dlq_degraded: int = 10
    probe_timeout: float = 2.0
    retry_after: int = 120
    # The Redis key that pauses outbox delivery while it exists (set by the operator: shipshape recover outbox_pause).
    outbox_pause_key: str = "sample_app:outbox:paused"

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Config":
        env = os.environ if env is None else env
        return cls(
            database_url=(env.get("DATABASE_URL") or "").strip(),
            redis_url=(env.get("REDIS_URL") or "").strip(),
            maintenance_mode=env_flag(env.get("MAINTENANCE_MODE")),
            read_only_mode=env_flag(env.get("READ_ONLY_MODE")),
            queue_pending_degraded=_env_int(env, "QUEUE_PENDING_DEGRADED", 100),
            queue_failed_degraded=_env_int(env, "QUEUE_FAILED_DEGRADED", 50),
            dlq_degraded=_env_int(env, "DLQ_DEGRADED", 10),
            outbox_pause_key=(env.get("OUTBOX_PAUSE_KEY") or "sample_app:outbox:paused").strip(),
        )

    def __repr__(self) -> str:  # never leak URLs with credentials
        return (
            f"Config(database_url={redact_url(self.database_url)!r}, "
            f"redis_url={redact_url(self.redis_url)!r}, "
            f"maintenance_mode={self.maintenance_mode}, read_only_mode={self.read_only_mode}, "
            f"queue_pending_degraded={self.queue_pending_degraded}, "
            f"queue_failed_degraded={self.queue_failed_degraded}, dlq_degraded={self.dlq_degraded})"
        )

    __str__ = __repr__

    def redact(self, text: str) -> str:
        """Remove any credential of the configured URLs from text (e.g. an error message)."""
        text = str(text)
        for url in (self.database_url, self.redis_url):
            if url:
                text = text.replace(url, redact_url(url))
                secret = _password(url)
                if secret:
                    text = text.replace(secret, "***")
        return _USERINFO.sub(r"\1***@", text)


_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.I)


def _password(url: str) -> str:
    m = re.match(r"^[a-z][a-z0-9+.-]*://[^:/@]*:([^@]*)@", url, re.I)
    return m.group(1) if m and m.group(1) else ""


def redact_url(url: str) -> str:
    return _USERINFO.sub(r"\1***@", url or "")


def sqlalchemy_url(database_url: str) -> str:
    """DATABASE_URL (postgresql://...) -> the SQLAlchemy URL alembic uses (postgresql+psycopg://...)."""
    url = (database_url or "").strip()
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise RuntimeError("DATABASE_URL must start with postgresql://")
    return "postgresql+psycopg://" + rest
