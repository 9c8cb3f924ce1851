"""A private, throwaway PostgreSQL server on loopback for bulkmail's tests: initdb and pg_ctl from
Debian's postgresql package, in a temporary folder, on a free port of 127.0.0.1 (and a Unix
socket in the folder). The machine's own clusters (/etc/postgresql, /var/lib/postgresql) are never
touched.

As root, the server runs as the postgres user (PostgreSQL refuses to run as root), so its folder
is made under the system's temporary folder, where that user can reach it: a fresh clone in a
`mktemp -d` folder is 0700. Authentication is `trust`, for connections from this machine only;
fsync is off, since a test never survives the machine crashing under it.

Usage, from Python:

    with PostgresServer() as pg:
        uri = pg.uri            # postgresql://postgres@127.0.0.1:PORT/postgres
        pg.restart()            # for the tests of a server that goes away and comes back

From the shell (the ctest fixture around the C++ store tests):

    python3 tests/postgres_server.py start STATE_DIR   # prints the URI, writes STATE_DIR/uri
    python3 tests/postgres_server.py stop STATE_DIR

Python 3.11 standard library only.
"""
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

from ports import free_port


def _bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server installed: scripts/setup installs Debian's postgresql")
    return os.path.dirname(found[-1])


class PostgresServer:
    def __init__(self, folder=None, port=None):
        self.bindir = _bindir()
        self.as_root = os.geteuid() == 0
        self.folder = folder or tempfile.mkdtemp(prefix="bulkmail-pg-")
        self.data = os.path.join(self.folder, "data")
        self.log = os.path.join(self.folder, "server.log")
        self.port = port or free_port()
        self.uri = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    def _run(self, argv, **kw):
        if self.as_root:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        return subprocess.run(argv, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=120, **kw)

    def _pg_ctl(self, *args):
        options = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=200" % (self.port, self.folder))
        return self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l", self.log,
                          "-o", options, "-w", "-t", "60"] + list(args))

    def start(self):
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(self.folder, pw.pw_uid, pw.pw_gid)
        os.chmod(self.folder, 0o700)
        if not os.path.exists(self.data):
            self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres",
                       "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
        for attempt in range(3):
            try:
                self._pg_ctl("start")
                return self
            except subprocess.CalledProcessError:
                if attempt == 2:
                    raise RuntimeError("PostgreSQL did not start:\n" + self.log_text())
                self.port = free_port()  # taken meanwhile by someone else
                self.uri = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    def stop(self, mode="fast"):
        self._pg_ctl("stop", "-m", mode)

    def restart(self):
        self._pg_ctl("restart", "-m", "fast")

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no server log)"

    def remove(self):
        try:
            self.stop("immediate")
        except Exception:
            pass
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.remove()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        sys.exit("usage: postgres_server.py start|stop STATE_DIR")
    state = sys.argv[2]
    os.makedirs(state, exist_ok=True)
    if sys.argv[1] == "start":
        server = PostgresServer().start()
        with open(os.path.join(state, "uri"), "w") as f:
            f.write(server.uri)
        with open(os.path.join(state, "folder"), "w") as f:
            f.write(server.folder)
        print(server.uri)
    else:
        try:
            with open(os.path.join(state, "folder")) as f:
                folder = f.read()
        except OSError:
            return
        server = PostgresServer(folder=folder)
        server.remove()
        for name in ("uri", "folder"):
            try:
                os.remove(os.path.join(state, name))
            except OSError:
                pass


if __name__ == "__main__":
    main()
