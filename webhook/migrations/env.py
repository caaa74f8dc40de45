"""Alembic environment: the URL comes from the caller (webhook.db.upgrade) or HELPLINE_DATABASE_URL."""
from alembic import context
from sqlalchemy import create_engine, pool

from webhook.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    from webhook.settings import Settings
    url = Settings.from_env().database_url


def run_migrations_offline():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = create_engine(url, poolclass=pool.NullPool, future=True)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=url.startswith("sqlite"))
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # two gateways or workers starting together on a new database: one migrates, the
                # other waits here and then finds the schema at head (held to the transaction's end)
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7203182)")
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
