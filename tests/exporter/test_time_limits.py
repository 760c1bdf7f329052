"""Hung sources and the export's deadline, for real (issue 10 item 10; issue 11 problem 4's query timeout).

A PostgreSQL ``pg_sleep`` query, a MariaDB ``SLEEP()``, a CSV that is a FIFO nobody writes to, an endless
``/dev/zero``, a calendar server that never answers or drips one byte at a time, and a database server that
freezes mid-query behind a proxy: each fails the run with one sentence, quickly, and frees the lock so the
next run goes ahead. ``engine_options`` no longer clashes with the exporter's own driver arguments.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from exporter.lock import ExclusiveLock
from exporter.state import State

from exporter_support import demo_sources_toml
from site_database import MARIADB_URL, PG_URL, reachable

LISTING = "'p-1' AS id, 'person' AS kind, 'Ada Lovelace' AS display_name"


def _database(require, backend: str) -> str:
    url = PG_URL if backend == "postgresql" else MARIADB_URL
    ok, why = reachable(url)
    require(ok, f"{backend}: {why}")
    return url


def _sql_source(url: str, listings: str, extra: str = "") -> str:
    return (f'[[sources]]\ntype = "sql"\nname = "hr"\nurl = "{url}"\n{extra}\n'
            f'[sources.queries]\nlistings = """{listings}"""\n')


def _configure(home, sources: str, export: str = "") -> None:
    home.config.write_text(f"[publish]\nretries = 0\n[export]\n{export}\n\n" + sources, encoding="utf-8")


def _assert_lock_is_free(home) -> None:
    with ExclusiveLock(home.run_lock, "an export"):
        pass


def _timed(cli, *args):
    started = time.monotonic()
    code, out, err = cli(*args)
    return code, out, err, time.monotonic() - started


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_a_sleeping_query_is_stopped_by_the_database_at_query_timeout(backend, require, demo_exporter, cli):
    url = _database(require, backend)
    sleep = "pg_sleep(60)" if backend == "postgresql" else "(SELECT SLEEP(60)) AS s"
    marker = f"bo-sleep-{os.getpid()}-{backend}"
    query = f"SELECT {LISTING} FROM {sleep} -- {marker}"
    _configure(demo_exporter.home, _sql_source(url, query, "query_timeout_s = 1"))

    code, out, err, seconds = _timed(cli, "run")
    assert code == 51, err
    assert "the listings query did not answer within 1 s" in err and "query_timeout_s" in err
    assert "lock is released" in err and "Traceback" not in err
    assert seconds < 20
    _assert_lock_is_free(demo_exporter.home)
    [failed] = State(demo_exporter.home.state).runs()
    assert failed.result == "failed" and "did not answer" in failed.message
    # The database stopped the query itself: nothing of ours is still running on the server.
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        sql = ("SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE :m AND pid <> pg_backend_pid()"
               if backend == "postgresql" else
               "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE :m AND id <> CONNECTION_ID()")
        deadline = time.monotonic() + 10
        while conn.execute(text(sql), {"m": f"%{marker}%"}).scalar_one() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert conn.execute(text(sql), {"m": f"%{marker}%"}).scalar_one() == 0
    engine.dispose()
    # check is held to the same limit.
    code, out, err, seconds = _timed(cli, "check")
    assert code == 51 and "did not answer within 1 s" in err and seconds < 20


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_the_query_timeout_is_cut_to_what_is_left_of_the_deadline(backend, require, demo_exporter, cli):
    url = _database(require, backend)
    sleep = "pg_sleep(60)" if backend == "postgresql" else "(SELECT SLEEP(60)) AS s"
    _configure(demo_exporter.home, _sql_source(url, f"SELECT {LISTING} FROM {sleep}", "query_timeout_s = 300"),
               export="deadline_minutes = 0.05")  # 3 seconds
    code, out, err, seconds = _timed(cli, "run")
    assert code == 51, err
    assert "the listings query did not answer within" in err
    assert seconds < 20
    _assert_lock_is_free(demo_exporter.home)


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_engine_options_add_driver_arguments_instead_of_clashing(backend, require, demo_exporter, cli):
    url = _database(require, backend)
    if backend == "postgresql":
        options = '[sources.engine_options.connect_args]\napplication_name = "bo-marker"\n'
        query = "SELECT current_setting('application_name') AS id, 'person' AS kind, 'Ada' AS display_name"
    else:
        options = '[sources.engine_options.connect_args]\ninit_command = "SET @bo_marker = \'bo-marker\'"\n'
        query = "SELECT @bo_marker AS id, 'person' AS kind, 'Ada' AS display_name"
    source = (f'[[sources]]\ntype = "sql"\nname = "hr"\nurl = "{url}"\nconnect_timeout_s = 5\n'
              f'[sources.queries]\nlistings = """{query}"""\n' + options)
    _configure(demo_exporter.home, source)
    from exporter.config import load_config
    from exporter.sources import ReadWindow, read_sources
    from site_database import utc_now

    data = read_sources(load_config(demo_exporter.home.config), ReadWindow.around(utc_now(), 1, 1))
    assert [row["id"] for row in data.listings] == ["bo-marker"]

    _configure(demo_exporter.home, _sql_source(url, f"SELECT {LISTING}", '[sources.engine_options]\nwidgets = 3\n'))
    code, out, err = cli("check")
    assert code == 2 and "engine_options are not accepted by SQLAlchemy" in err and "widgets" in err


def test_a_csv_that_is_a_fifo_nobody_writes_to_times_out_and_frees_the_lock(demo_exporter, cli, tmp_path):
    fifo = tmp_path / "listings.csv"
    os.mkfifo(fifo)
    _configure(demo_exporter.home, f'[[sources]]\ntype = "csv"\nname = "staff"\ntable = "listings"\n'
                                   f'path = "{fifo}"\ntimeout_s = 1\n')
    code, out, err, seconds = _timed(cli, "run")
    assert code == 51, err
    assert f"the FIFO {fifo} did not answer within 1 s" in err and "lock is released" in err
    assert seconds < 15
    _assert_lock_is_free(demo_exporter.home)


def test_a_csv_fifo_that_is_written_to_is_read(demo_exporter, cli, tmp_path):
    fifo = tmp_path / "listings.csv"
    os.mkfifo(fifo)

    def writer():
        with open(fifo, "w", encoding="utf-8") as handle:
            handle.write("id,kind,display_name\np-1,person,Ada Lovelace\n")

    thread = threading.Thread(target=writer)
    thread.start()
    from exporter.config import load_config
    from exporter.sources import ReadWindow, read_sources
    from site_database import utc_now

    _configure(demo_exporter.home, f'[[sources]]\ntype = "csv"\ntable = "listings"\npath = "{fifo}"\n'
                                   'timeout_s = 20\n')
    data = read_sources(load_config(demo_exporter.home.config), ReadWindow.around(utc_now(), 1, 1))
    thread.join(20)
    assert [row["display_name"] for row in data.listings] == ["Ada Lovelace"]


@pytest.mark.parametrize("kind", ["csv", "rota", "ical"])
def test_an_endless_file_is_refused_at_its_size_cap(kind, demo_exporter, cli, tmp_path):
    endless = tmp_path / f"endless.{kind}"
    endless.symlink_to("/dev/zero")
    if kind == "csv":
        source = f'[[sources]]\ntype = "csv"\ntable = "listings"\npath = "{endless}"\nmax_mib = 2\n'
    elif kind == "rota":
        source = demo_sources_toml().split('[[sources]]\ntype = "rota"')[0] + \
            f'[[sources]]\ntype = "rota"\npath = "{endless}"\n'
    else:
        source = demo_sources_toml() + (f'[[sources]]\ntype = "ical"\npath = "{endless}"\n'
                                        'schedule_id = "oc-001"\n')
    _configure(demo_exporter.home, source)
    code, out, err, seconds = _timed(cli, "run")
    assert code == 51, err
    assert "is larger than" in err and "MiB" in err
    assert seconds < 60


class _SilentServer:
    """Accepts connections and never says a word (a hung calendar server)."""

    def __init__(self, drip: bool = False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.drip = drip
        self.stop = threading.Event()
        self.conns = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(conn)
            if self.drip:
                threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\nContent-Length: 100000\r\n\r\n")
            while not self.stop.is_set():
                conn.sendall(b"B")
                self.stop.wait(0.25)
        except OSError:
            pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("drip", [False, True], ids=["never-answers", "drips-a-byte-at-a-time"])
def test_a_hung_calendar_server_fails_the_feed_within_its_timeouts(drip, demo_exporter, cli):
    server = _SilentServer(drip=drip)
    try:
        _configure(demo_exporter.home, demo_sources_toml() + (
            f'[[sources]]\ntype = "ical"\nname = "amion"\nurl = "http://127.0.0.1:{server.port}/feed.ics?token=s3cret"\n'
            'schedule_id = "oc-001"\ntimeout_s = 1\n'))
        code, out, err, seconds = _timed(cli, "run")
    finally:
        server.close()
    assert code == 51, err
    assert f"the feed http://127.0.0.1:{server.port}/feed.ics" in err and "s3cret" not in err
    assert ("(the whole download) did not answer within 4 s" in err) if drip else ("did not answer within 1 s" in err)
    assert seconds < 30
    _assert_lock_is_free(demo_exporter.home)


class _FreezingProxy:
    """A TCP proxy to a database that stops passing anything on once the client sends ``trigger``.

    From the exporter's side this is a database server that froze mid-query: the connection stays up
    (keepalives are answered), no error ever comes back, and no statement timeout can reach it.
    """

    def __init__(self, host: str, port: int, trigger: bytes):
        self.upstream = (host, port)
        self.trigger = trigger
        self.frozen = threading.Event()
        self.closing = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.sockets = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.closing.is_set():
            try:
                client, _ = self.sock.accept()
            except OSError:
                continue
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src, dst, from_client):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_client and self.trigger in data:
                    self.frozen.set()
                if self.frozen.is_set():
                    continue  # swallowed: the "server" never answers again
                dst.sendall(data)
        except OSError:
            pass

    def close(self):
        self.closing.set()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
        self.sock.close()


def test_a_database_that_freezes_mid_query_is_abandoned_at_the_deadline(require, demo_exporter, cli):
    _database(require, "postgresql")
    proxy = _FreezingProxy("127.0.0.1", 5432, b"bo-freeze-here")
    try:
        url = f"postgresql+psycopg2://postgres@127.0.0.1:{proxy.port}/test?sslmode=disable"
        _configure(demo_exporter.home, _sql_source(url, f"SELECT {LISTING} -- bo-freeze-here",
                                                   "query_timeout_s = 300"),
                   export="deadline_minutes = 0.05")  # 3 seconds
        code, out, err, seconds = _timed(cli, "run")
        assert proxy.frozen.is_set()
        assert code == 55, err
        assert "took longer than its deadline of 3 s" in err and "while reading source 'hr'" in err
        assert "lock is released" in err
        assert seconds < 20
        _assert_lock_is_free(demo_exporter.home)
        [failed] = State(demo_exporter.home.state).runs()
        assert failed.result == "failed" and "deadline" in failed.message

        # The next run (the source fixed) goes ahead at once.
        _configure(demo_exporter.home, demo_sources_toml())
        code, out, err = cli("run")
        assert code == 0, err
    finally:
        proxy.close()


def test_an_endless_sqlite_query_is_interrupted_at_query_timeout(demo_exporter, cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'directory.db'}"
    endless = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
               f"SELECT {LISTING} FROM n WHERE x < 0")
    _configure(demo_exporter.home, _sql_source(url, endless, "query_timeout_s = 1"))
    code, out, err, seconds = _timed(cli, "run")
    assert code == 51, err
    assert "the listings query did not answer within 1 s" in err
    assert seconds < 20
