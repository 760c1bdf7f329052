"""SQL sources through SQLAlchemy: the site's own queries, mapped onto the model, in one consistent read.

One ``[[sources]]`` entry per database::

    type = "sql"
    name = "directory database"
    url = "postgresql+psycopg2://bo_reader@db.example.org/directory"   # any SQLAlchemy URL
    url_env = "BO_DIRECTORY_URL"         # ... or the whole URL from an environment variable
    password_env = "BO_DIRECTORY_PASSWORD"  # put the password in the environment, not in the file
    isolation = "auto"                   # see below
    connect_timeout_s = 15
    query_timeout_s = 300                # each query is stopped by the database after this (see below)
    naive_times = "local"                # DATETIME values without an offset: the schedule's wall time
                                         # ("local") or UTC ("utc"); refused when not set and one appears
    [sources.engine_options]             # optional: create_engine() keywords, e.g. connect_args = {...}
    [sources.queries]                    # any subset of the four tables
    listings = "SELECT emp_id AS id, 'person' AS kind, ... FROM staff"
    contact_methods = "..."
    schedules = "..."
    shifts = "SELECT ... WHERE ends_at > :window_start AND starts_at < :window_end"
    [sources.mapping.listings]           # optional: columns / constants / values / ignore (sources.mapping)

Queries name the model's columns (with ``AS``) or are mapped; ``:window_start`` and ``:window_end``
(UTC datetimes) may be used to fetch only the shifts the snapshot covers.

Every query of one export runs in ONE read-only transaction at snapshot isolation, so a listing
deleted between the listings query and the shifts query cannot leave a shift pointing at nobody:

* PostgreSQL: REPEATABLE READ, READ ONLY (a true snapshot);
* MariaDB / MySQL: START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY (InnoDB);
* SQL Server: SNAPSHOT isolation (the database needs ALLOW_SNAPSHOT_ISOLATION ON);
* SQLite: one explicit read transaction (BEGIN ... ROLLBACK);
* ``isolation = "SERIALIZABLE"`` (or another level name) forces a level on any database.

Every query has a time limit, enforced by the database itself so that it also frees the server:

* PostgreSQL: ``SET LOCAL statement_timeout`` (milliseconds), plus TCP keepalives on the connection;
* MariaDB: ``SET SESSION max_statement_time`` (seconds); MySQL: ``max_execution_time`` (milliseconds);
  plus PyMySQL's socket ``read_timeout`` a little above it, for a server that stops answering at all;
* SQL Server: pyodbc's per-connection query timeout (``Connection.timeout``);
* SQLite: a progress handler that interrupts the query.

Each limit is the source's ``query_timeout_s``, cut to what is left of the export's deadline.

If the connection drops, a query times out or any query fails, the whole source fails (SourceError):
nothing is built from a partial read. This module must never write to the source database, and never put a password
in a message or the log.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import timezone
from typing import Any

from backup_operator.errors import ConfigError

from backup_operator.errors import SourceError
from exporter.sources import TABLES, DirectoryData, ReadWindow, source_name
from exporter.deadline import seconds_left, timed_out
from exporter.sources.mapping import ColumnMapping, check_keys, positive

__all__ = ["read", "read_database"]

_KEYS = {"allow_overlaps",
         "type", "name", "url", "url_env", "password_env", "isolation", "connect_timeout_s", "naive_times",
         "queries", "mapping", "engine_options", "query_timeout_s"}
DEFAULT_QUERY_TIMEOUT_S = 300.0
# Set by the exporter itself: an engine option may add to these, never replace them.
_RESERVED_ENGINE_OPTIONS = {"poolclass", "creator", "module", "strategy"}


def _url(spec: dict[str, Any], where: str):
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    text = spec.get("url")
    if spec.get("url_env"):
        text = os.environ.get(spec["url_env"])
        if not text:
            raise ConfigError(f"{where}: the environment variable {spec['url_env']} (url_env) is not set.")
    if not text:
        raise ConfigError(f"{where}: a sql source needs url (or url_env).")
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError(f"{where}: {text.split('@')[-1]!r} is not a database URL like "
                          "postgresql+psycopg2://user@host/database.") from None
    if spec.get("password_env"):
        password = os.environ.get(spec["password_env"])
        if password is None:
            raise ConfigError(f"{where}: the environment variable {spec['password_env']} (password_env) is "
                              "not set.")
        url = url.set(password=password)
    return url


def _begin_consistent_read(conn, dialect: str, isolation: str):
    """Start the one read transaction all queries share; returns the connection to use."""
    level = isolation.upper()
    if level != "AUTO":
        conn = conn.execution_options(isolation_level=level)
        if dialect == "sqlite":
            conn.exec_driver_sql("BEGIN")
        return conn
    if dialect == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
    elif dialect in ("mysql", "mariadb"):
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        # Without this, InnoDB takes the snapshot at the first read, not at the start: the same result
        # for a single source, but explicit is what we mean.
        conn.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
    elif dialect == "mssql":
        conn = conn.execution_options(isolation_level="SNAPSHOT")
    elif dialect == "sqlite":
        # pysqlite only opens transactions before writes; a read transaction must be opened by hand.
        conn.exec_driver_sql("BEGIN")
    else:
        conn = conn.execution_options(isolation_level="SERIALIZABLE")
    return conn


def _connect_args(dialect: str, driver: str, timeout: float | None, query_timeout: float) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if dialect == "postgresql" and driver in ("psycopg2", "psycopg"):
        # Keepalives notice a server or network that went away mid-query (no reply at all).
        args.update(keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3)
        if timeout:
            args["connect_timeout"] = max(1, int(timeout))
    elif dialect in ("mysql", "mariadb") and driver == "pymysql":
        # The server stops the query at query_timeout_s; this socket timeout is for a server that hangs.
        args["read_timeout"] = int(query_timeout) + 30
        if timeout:
            args["connect_timeout"] = max(1, int(timeout))
    elif dialect == "sqlite" and timeout:
        args["timeout"] = float(timeout)
    elif dialect == "mssql" and driver == "pyodbc" and timeout:
        args["timeout"] = max(1, int(timeout))  # pyodbc: the login timeout
    return args


def _limit_statement(conn, dialect: str, seconds: float) -> None:
    """Make the database stop the next query after ``seconds`` (see the module docstring)."""
    if dialect == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")
    elif dialect in ("mysql", "mariadb"):
        if getattr(conn.dialect, "is_mariadb", False):
            conn.exec_driver_sql(f"SET SESSION max_statement_time = {max(0.001, seconds):.3f}")
        else:
            conn.exec_driver_sql(f"SET SESSION max_execution_time = {max(1, int(seconds * 1000))}")
    elif dialect == "mssql":
        dbapi = conn.connection.dbapi_connection
        if hasattr(dbapi, "timeout"):
            dbapi.timeout = max(1, int(seconds + 0.999))
    elif dialect == "sqlite":
        import time as _time

        dbapi = conn.connection.dbapi_connection
        stop_at = _time.monotonic() + seconds
        dbapi.set_progress_handler(lambda: 1 if _time.monotonic() > stop_at else 0, 10_000)


def _timed_out(exc, dialect: str) -> bool:
    """Was this database error the query's time limit?"""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "pgcode", None) or (orig.args[0] if orig is not None and getattr(orig, "args", None) else None)
    text = str(orig or exc).lower()
    return (code == "57014" and "statement timeout" in text) or code in (1969, 3024) \
        or "max_statement_time" in text or "maximum statement execution time" in text \
        or (dialect == "sqlite" and "interrupted" in text) or "query timeout expired" in text \
        or "timed out" in text


_BATCH = 20_000  # rows per fetch: a million-row query streams through in bounded memory


def _prefetched(fetch: Callable[[], Sequence], depth: int = 2) -> Iterator[Sequence]:
    """The batches ``fetch()`` returns until an empty one, each fetched ahead on a helper thread.

    While this thread stores one batch (SQLite works without the GIL), the driver waits for the next
    one from the server and parses it: on two cores a big read takes the longer of the two, not their
    sum. Only the helper touches the driver until the last batch is in; its errors are raised here.
    """
    batches: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                batch = fetch()
                batches.put((batch, None))
                if not batch:
                    return
        except BaseException as exc:  # handed to the reading thread, which raises it
            batches.put(((), exc))

    helper = threading.Thread(target=run, name="sql-source-prefetch", daemon=True)
    helper.start()
    try:
        while True:
            batch, error = batches.get()
            if error is not None:
                raise error
            if not batch:
                return
            yield batch
    finally:
        stop.set()
        while helper.is_alive():  # let a helper blocked on a full queue finish its last put
            try:
                batches.get(timeout=0.05)
            except queue.Empty:
                pass
        helper.join()


def _driver_rows(result) -> Callable[[], Sequence]:
    """A fetch of the next batch as the driver's own row tuples, skipping SQLAlchemy's Row objects.

    A text() query's columns have no type, so SQLAlchemy has nothing to convert: its Rows only wrap the
    driver's tuples, and building 400k of them cost a third of the read. ``_fetchmany_impl`` is the
    result's own fetch (its row buffer, its DBAPIError wrapping, closing at the end) without the Row;
    the public ``fetchmany`` is used when the result has typed columns or SQLAlchemy lacks that method.
    """
    raw = getattr(result, "_fetchmany_impl", None)
    processors = getattr(getattr(result, "_metadata", None), "_processors", None)
    if raw is None or processors is None or any(processors):
        return lambda: result.fetchmany(_BATCH)
    return lambda: raw(_BATCH)


def _stream(result, mapping: ColumnMapping, where: str, *, into) -> None:
    """Move a query's rows into ``into`` (the source's part) a batch at a time.

    Listings and contact methods whose columns need no renaming or recoding go in as the driver's own
    tuples (``BulkTable.add_rows``); everything else as dicts through the mapping.
    """
    columns = list(result.keys())
    bound = mapping.bind(columns, where)
    fast = not mapping.values and not mapping.constants and not mapping.templates and \
        all(k == v for k, v in bound.items())
    target = into.table(mapping.table)
    for batch in _prefetched(_driver_rows(result)):
        if fast and hasattr(target, "add_rows"):
            target.add_rows(columns, batch)
            continue
        rows = [dict(zip(columns, record)) for record in batch]
        if not fast:
            rows = [mapping.apply(row, bound) for row in rows]
        target.extend(rows)


def read_database(spec: dict[str, Any], window: ReadWindow, *, where: str, into: DirectoryData) -> None:
    """Run every configured query in one consistent read, streaming model rows into ``into``."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
    from sqlalchemy.pool import NullPool

    queries = dict(spec.get("queries", {}))
    unknown = [t for t in queries if t not in TABLES]
    if unknown:
        raise ConfigError(f"{where}: queries.{unknown[0]} is not a table; use {', '.join(TABLES)}.")
    if not queries:
        raise ConfigError(f"{where}: a sql source needs at least one of queries.{', queries.'.join(TABLES)}.")
    mappings = {table: ColumnMapping.from_spec(table, dict(spec.get("mapping", {}).get(table, {})),
                                               f"{where} mapping.{table}") for table in queries}
    query_timeout = positive(spec, "query_timeout_s", DEFAULT_QUERY_TIMEOUT_S, where)
    connect_timeout = positive(spec, "connect_timeout_s", 15, where)

    url = _url(spec, where)
    shown = url.render_as_string(hide_password=True)
    options = spec.get("engine_options", {})
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: engine_options must be a table of create_engine() keywords.")
    options = dict(options)
    reserved = sorted(_RESERVED_ENGINE_OPTIONS & set(options))
    if reserved:
        raise ConfigError(f"{where}: engine_options.{reserved[0]} cannot be set; the exporter opens one "
                          "connection per export itself.")
    extra_args = options.pop("connect_args", {})
    if not isinstance(extra_args, dict):
        raise ConfigError(f"{where}: engine_options.connect_args must be a table of driver arguments.")
    # The site's own driver arguments come on top of ours (a longer connect timeout, an SSL mode, ...).
    connect_args = {**_connect_args(url.get_backend_name(), url.get_driver_name(), connect_timeout, query_timeout),
                    **extra_args}
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args, **options)
    except (TypeError, ArgumentError) as exc:
        raise ConfigError(f"{where}: engine_options are not accepted by SQLAlchemy ({exc}); see "
                          "https://docs.sqlalchemy.org/en/20/core/engines.html#sqlalchemy.create_engine.") \
            from None
    except NoSuchModuleError:
        raise ConfigError(f"{where}: no SQLAlchemy dialect for {url.drivername!r}; install the driver "
                          "(e.g. pip install 'backup-operator[postgresql]').") from None
    except ImportError as exc:
        raise ConfigError(f"{where}: the database driver for {url.drivername!r} is not installed ({exc}).") \
            from None
    params = {"window_start": window.start.astimezone(timezone.utc),
              "window_end": window.end.astimezone(timezone.utc)}
    table = "connect"
    try:
        with engine.connect() as conn:
            conn = _begin_consistent_read(conn, engine.dialect.name, str(spec.get("isolation", "auto")))
            for table, sql in queries.items():
                # Server-side cursors where the driver has them: rows arrive as they are consumed.
                statement = text(sql).execution_options(stream_results=True)
                wanted = {k: v for k, v in params.items() if f":{k}" in sql}
                limit = seconds_left(query_timeout)
                _limit_statement(conn, engine.dialect.name, limit)
                try:
                    result = conn.execute(statement, wanted)
                    try:
                        _stream(result, mappings[table], f"{where}, query {table}", into=into)
                    finally:
                        # An open cursor would keep SQLite's read lock (and a server cursor) alive after
                        # an error.
                        result.close()
                except DBAPIError as exc:
                    if _timed_out(exc, engine.dialect.name):
                        raise SourceError(f"Source {source_label(spec)!r} ({shown}): " + timed_out(
                            f"the {table} query", limit) + " (query_timeout_s).") from None
                    raise
            conn.rollback()  # read-only: nothing to keep
    except SourceError:
        raise
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        if exc.connection_invalidated or "terminat" in reason.lower() or "lost connection" in reason.lower() \
                or "server closed" in reason.lower() or "gone away" in reason.lower():
            step = "while connecting" if table == "connect" else f"during the {table} query"
            raise SourceError(f"Source {source_label(spec)!r} ({shown}): the connection was lost {step} "
                              f"({reason}); nothing was published, the next run will try again.") from None
        step = "could not connect" if table == "connect" else f"the {table} query failed"
        raise SourceError(f"Source {source_label(spec)!r} ({shown}): {step} ({reason}); nothing was "
                          "published.") from None
    except SQLAlchemyError as exc:
        raise SourceError(f"Source {source_label(spec)!r} ({shown}): the {table} query failed "
                          f"({type(exc).__name__}: {exc}); nothing was published.") from None
    finally:
        engine.dispose()


def source_label(spec: dict[str, Any]) -> str:
    return source_name(spec)


def read(spec: dict[str, Any], config, window: ReadWindow, so_far: DirectoryData) -> DirectoryData:
    name = source_name(spec)
    where = f"{config.path} source {name!r}"
    check_keys(spec, _KEYS, where)
    data = so_far.part()
    read_database(spec, window, where=f"Source {name!r}", into=data)
    data.descriptions.append(name)
    return data
