"""Database and Redis connections (short timeouts, no pool: one connection per request)."""

from __future__ import annotations

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def connect(database_url: str, timeout: float = 2.0, statement_timeout_ms: int = 2000) -> psycopg.Connection:
    if not database_url:
        raise psycopg.OperationalError("DATABASE_URL is not set")
    return psycopg.connect(
        database_url,
        connect_timeout=max(1, int(round(timeout))),
        options=f"-c statement_timeout={int(statement_timeout_ms)}",
        application_name="sample_app",
    )


def redis_client(redis_url: str, timeout: float = 2.0) -> redis.Redis:
    if not redis_url:
        raise redis.ConnectionError("REDIS_URL is not set")
    return redis.Redis.from_url(
        redis_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), 0),  # a probe must answer within its timeout
        decode_responses=True,
    )
