"""Alembic environment: migrations run from ``oligolab.service.db.migrate`` (or the ``alembic`` command with
``-x url=...``) against the URL in the configuration."""

from alembic import context

from oligolab.service.db import Base, make_engine

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    assert url, "no database URL: pass -x url=... or set sqlalchemy.url"
    engine = make_engine(url)
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # a migration that rebuilds a table (0007) drops it while other tables refer to it; references are
            # checked by that migration instead (PRAGMA foreign_key_check), the service's connections keep them on
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
