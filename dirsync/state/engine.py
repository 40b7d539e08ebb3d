"""Engines for the store: SQLite pragmas and real transactions, read-only opens, migrations.

SQLite gets ``journal_mode=WAL`` (writable opens only), ``foreign_keys=ON`` and a
``busy_timeout`` on every new connection. pysqlite's own transaction handling is switched off
(SQLAlchemy's documented recipe) so that a transaction really starts with ``BEGIN``: a write
transaction starts with ``BEGIN IMMEDIATE`` and so takes the write lock up front, waiting up to
the busy timeout for another writer instead of failing half-way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, delete, event, insert, inspect, select, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import StaticPool

from dirsync import version
from dirsync.errors import StoreTooNew
from dirsync.state import fresh_schema
from dirsync.state.files import create_private_file
from dirsync.state.schema import StoreWriterRow

if TYPE_CHECKING:
    from alembic.config import Config

#: execution option that makes a SQLite transaction start with BEGIN IMMEDIATE
WRITE_OPTION = "dirsync_write"
BUSY_TIMEOUT_MS = 30_000
#: PostgreSQL: the advisory lock that orders schema upgrades (a fixed key of dirsync's own)
UPGRADE_LOCK_KEY = 0x6469_7273_796E_6301  # "dirsync" + 1
MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL; None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    if database.startswith("file:"):
        return Path(database.removeprefix("file:").split("?", 1)[0])
    return Path(database)


def display_url(url: str) -> str:
    """The store URL as it may be shown: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


def store_file(url: str) -> Path | None:
    """The file behind a SQLite store URL; None for an in-memory database or another backend."""
    parsed = make_url(url)
    return sqlite_path(parsed) if is_sqlite(parsed) else None


def readonly_sqlite_url(path: Path) -> URL:
    """``sqlite:///file:PATH?mode=ro&uri=true``: SQLite itself refuses every write.

    A read-only reader of a WAL database creates the ``-wal`` and ``-shm`` files when they are
    missing and cannot remove them afterwards, and a dry run must leave no trace. They are
    missing only when no connection has the database open (the last one to close removes
    them), so then nothing is writing and ``immutable=1`` reads the file without them. While
    another process has it open, the files exist and the ordinary read-only open uses them.
    """
    query = {"mode": "ro", "uri": "true"}
    if not Path(f"{path}-wal").exists():
        query["immutable"] = "1"
    return URL.create("sqlite", database=f"file:{path.absolute()}", query=query)


def create_store_engine(
    url: str | URL, *, readonly: bool = False, stall_timeout: timedelta | None = None
) -> Engine:
    """An engine for ``url``; for SQLite, with the pragmas and transaction recipe applied.

    ``stall_timeout`` (PostgreSQL; the daemon's ``takeover``): the server ends a session left
    idle inside a transaction this long, e.g. by a node that was stopped or cut off in the
    middle of an apply, so that its row locks do not hold up the node that takes over."""
    parsed = make_url(url)
    if not is_sqlite(parsed):
        options: dict[str, Any] = {"pool_pre_ping": True}
        if parsed.get_backend_name() == "postgresql":
            if readonly:
                options["execution_options"] = {"postgresql_readonly": True}
            if stall_timeout is not None:
                milliseconds = max(1000, int(stall_timeout.total_seconds() * 1000))
                setting = f"-c idle_in_transaction_session_timeout={milliseconds}"
                options["connect_args"] = {"options": setting}
        return create_engine(parsed, **options)
    path = sqlite_path(parsed)
    kwargs: dict[str, Any] = {}
    if path is None:
        # one shared connection, or every checkout would see a different empty database
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    elif readonly:
        parsed = readonly_sqlite_url(path)
    else:
        create_private_file(path)  # owner-only: SQLite gives -wal and -shm the same mode
    engine = create_engine(parsed, **kwargs)
    _install_sqlite_listeners(engine, wal=not readonly and path is not None)
    return engine


def _install_sqlite_listeners(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not pysqlite, decide where transactions begin
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if wal:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough under WAL
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


#: SQLite's page cache while an apply writes, in KiB (SQLite's default is 2,000 KiB). Measured
#: on a first sync of 100,000 users and 10,000 groups (bench/first_sync_apply): 16 MiB takes
#: the transaction's writes to the WAL from 140,000 to 82,000 (what the commit writes anyway)
#: and its reads back from 239,000 to 157,000, ~0.3 s less system time, for ~17 MB of RSS
#: while the apply runs; 64 MiB saves ~0.7 s but costs ~60 MB, beyond the sync's RSS budget.
APPLY_CACHE_KIB = 16 * 1024


@contextmanager
def page_cache(connection: Connection, kib: int = APPLY_CACHE_KIB) -> Iterator[None]:
    """A larger SQLite page cache while the caller's transaction writes, the connection's
    own size restored afterwards (also on an error); other databases: nothing.

    A first sync writes ~100 MB of pages in one transaction. With the default cache SQLite
    keeps spilling dirty pages to the WAL mid-transaction and reading them back, e.g. for the
    foreign-key lookup of every group member edge. The cache grows only as pages are used (a
    small run costs nothing), and pages beyond the restored size are freed as the commit or
    rollback releases them, so no pooled connection keeps the memory.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    previous = int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
    connection.exec_driver_sql(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    except BaseException:
        with suppress(Exception):  # the write's own error is the one to report
            connection.exec_driver_sql(f"PRAGMA cache_size = {previous}")
        raise
    connection.exec_driver_sql(f"PRAGMA cache_size = {previous}")


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configured in code: no alembic.ini is needed at runtime."""
    from alembic.config import Config  # alembic costs ~0.3 s to import: only when migrating

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


_REVISION = re.compile(r"^(down_)?revision\b[^=]*=\s*(?:\"([^\"]*)\"|'([^']*)'|None)", re.M)


def _revision_graph() -> tuple[set[str], set[str]]:
    """Every migration revision and every one that another revises, read from the migration
    files (no alembic import)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for match in _REVISION.finditer(path.read_text(encoding="utf-8")):
            value = match.group(2) or match.group(3)
            if value:
                (parents if match.group(1) else revisions).add(value)
    return revisions, parents


def head_revisions() -> set[str]:
    """The newest migration revisions."""
    revisions, parents = _revision_graph()
    return revisions - parents


def known_revisions() -> set[str]:
    """Every revision this dirsync has a migration for."""
    return _revision_graph()[0]


def stored_revisions(connection: Connection) -> set[str] | None:
    """The revisions Alembic's version table names; None when the store has no such table."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}


def refuse_unknown(connection: Connection, found: set[str]) -> None:
    """Raise ``StoreTooNew`` when the store is at a revision this dirsync has no migration for:
    a newer dirsync migrated it. The message names that dirsync's version (recorded in
    ``store_writers``) and this one's, in one line."""
    unknown = sorted(found - known_revisions())
    if not unknown:
        return
    writers: list[str] = []
    if inspect(connection).has_table(StoreWriterRow.__tablename__):
        writers = sorted(
            set(
                connection.scalars(
                    select(StoreWriterRow.version).where(StoreWriterRow.revision.in_(unknown))
                )
            )
        )
    schema = ", ".join(unknown)
    if writers:
        newest = ", ".join(writers)
        raise StoreTooNew(
            f"the store was written by dirsync {newest}, newer than this dirsync "
            f"{version.current()} (its schema {schema} is unknown here): "
            f"install dirsync {newest} or later"
        )
    raise StoreTooNew(
        f"the store was written by a newer dirsync than this one ({version.current()}; the "
        f"store's schema {schema} is unknown here, and it does not say which version wrote "
        "it): install the newer dirsync"
    )


def check_known(engine: Engine) -> None:
    """``refuse_unknown`` for a store that is only read."""
    with engine.connect() as connection:
        found = stored_revisions(connection)
        if found is not None:
            refuse_unknown(connection, found)


def at_head(engine: Engine) -> bool:
    """Whether the schema is already at the newest revision (a cheap check, no alembic);
    ``StoreTooNew`` when a newer dirsync wrote it."""
    heads = head_revisions()
    if not heads:
        return False
    with engine.connect() as connection:
        found = stored_revisions(connection)
        if found is None:
            return False
        refuse_unknown(connection, found)
    return found == heads


def record_writer(connection: Connection, revisions: set[str]) -> None:
    """Note in the caller's transaction that this dirsync brought the store to ``revisions``."""
    rows = [
        {"revision": revision, "version": version.current(), "written_at": datetime.now(UTC)}
        for revision in sorted(revisions)
    ]
    connection.execute(delete(StoreWriterRow).where(StoreWriterRow.revision.in_(revisions)))
    connection.execute(insert(StoreWriterRow), rows)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision, in one transaction.

    An empty database gets the newest schema straight from the models (``fresh_schema``),
    without importing Alembic; only an existing store is migrated revision by revision. The
    emptiness is checked inside the write transaction, so of two processes creating the same
    store, the second finds the first one's tables and has nothing left to do. SQLite's write
    lock orders them; on PostgreSQL (several nodes starting at once) an advisory lock held for
    the transaction does.
    """
    if at_head(engine):
        return
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK_KEY}
                )
            heads = head_revisions()
            if fresh_schema.is_empty(connection):
                fresh_schema.create_schema(connection, heads)
                record_writer(connection, heads)
                return
            found = stored_revisions(connection)  # again: another process may have migrated
            refuse_unknown(connection, found or set())
            from alembic import command  # only when there is something to migrate

            command.upgrade(alembic_config(connection), "head")
            record_writer(connection, heads)


def has_schema(engine: Engine) -> bool:
    """Whether the store's tables exist (a read-only check)."""
    with engine.connect() as connection:
        return inspect(connection).has_table("organizations")
