"""Alembic environment for sample_app.

The URL comes from DATABASE_URL (postgresql://user:pass@host:5432/db) and is used with the
postgresql+psycopg dialect. All migrations of one run execute in ONE transaction
(transactional DDL on PostgreSQL): if any migration fails, nothing of the run is kept.
The URL is never logged.
"""

import os
import sys
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from sample_app.config import sqlalchemy_url  # noqa: E402

target_metadata = None


def _url() -> str:
    try:
        return sqlalchemy_url(os.environ.get("DATABASE_URL", ""))
    except RuntimeError as exc:
        sys.exit(f"alembic: {exc} (load the service env file first)")


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      transactional_ddl=True, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool, connect_args={"connect_timeout": 10})
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transactional_ddl=True,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            # Fail fast instead of queueing behind a long lock (e.g. a running backup).
            connection.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
