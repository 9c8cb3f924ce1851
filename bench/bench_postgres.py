"""PostgreSQL for the benchmarks (bench/store, bench/dispatch): a private server started for the
run (tests/postgres_server.py) but durable as production runs it, and a fresh database per run."""
import os
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import postgres_server  # noqa: E402  (tests/ is not a package)


class DurableServer(postgres_server.PostgresServer):
    """The test server, but with fsync and full-page writes at PostgreSQL's defaults (on), as a
    production server runs: the tests turn them off, which would flatter every commit."""

    def _run(self, argv, **kw):
        argv = [a.replace("-c fsync=off -c full_page_writes=off", "") for a in argv]
        return super()._run(argv, **kw)


def psql(uri, sql):
    argv = [os.path.join(postgres_server._bindir(), "psql"), "-X", "-q", "-A", "-t", "-v",
            "ON_ERROR_STOP=1", "-d", uri, "-c", sql]
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120).stdout.strip()


def on_database(uri, name):
    """`uri` with its database replaced by `name`."""
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


class FreshDatabase:
    """A new PostgreSQL database on the server of `uri`, dropped on leaving."""
    count = 0

    def __init__(self, uri):
        FreshDatabase.count += 1
        self.admin = uri
        self.name = "bench_%d_%d" % (os.getpid(), FreshDatabase.count)
        self.uri = on_database(uri, self.name)

    def __enter__(self):
        psql(self.admin, "CREATE DATABASE " + self.name)
        return self.uri

    def __exit__(self, *exc):
        psql(self.admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)
