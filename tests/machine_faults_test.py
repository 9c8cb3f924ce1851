"""Faults of the machine under a draining bulkmaild: the database's disk filling up (a small tmpfs,
filled for real), and the database file locked by another process for longer than the busy
timeout. The real daemon and CLI against tests/smtp_server.py on loopback. Mounting needs root;
without it the disk tests are skipped."""
import http.client
import os
import signal
import sqlite3
import subprocess
import threading
import time
import unittest

from daemon_test import BIN, Env, wait_for

IS_ROOT = os.geteuid() == 0


def healthz(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def fill(path):
    """Writes zeros to `path` until the file system is full; returns the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                written += f.write(chunk)
            except OSError:
                break
    # What is left is less than a chunk: take it too, a byte at a time in pieces.
    with open(path, "ab", buffering=0) as f:
        for size in (4096, 512, 1):
            while True:
                try:
                    f.write(b"\0" * size)
                    written += size
                except OSError:
                    break
    return written


class TmpfsEnv(Env):
    """An Env whose database lives on a tmpfs of its own, `size` big."""

    def __init__(self, size="24m", **kwargs):
        super().__init__(**kwargs)
        self.disk = os.path.join(self.dir, "disk")
        os.mkdir(self.disk)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size + ",mode=0700", "tmpfs", self.disk],
                           capture_output=True)
        if r.returncode != 0:  # root without the right to mount (a container): nothing to test on
            self.mounted = False
            super().close()
            raise unittest.SkipTest("cannot mount a tmpfs: " + r.stderr.decode().strip())
        self.mounted = True
        try:
            with open(self.config) as f:
                cfg = f.read()
            with open(self.config, "w") as f:
                f.write(cfg.replace("database: queue.db\n", "database: disk/queue.db\n"))
            r = subprocess.run([os.path.join(BIN, "bulkmaild"), "--config", self.config, "--check"],
                               capture_output=True)
            if r.returncode != 0:
                raise AssertionError("bulkmaild --check failed: %s" % r.stderr.decode())
            self.db_path = os.path.join(self.disk, "queue.db")
        except BaseException:
            self.close()
            raise

    def close(self):
        for p in (self.daemon, self.server):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if self.mounted:
            subprocess.run(["umount", self.disk], check=False)
        super().close()


@unittest.skipUnless(IS_ROOT, "mounting a tmpfs needs root")
class FullDiskTest(unittest.TestCase):
    def tearDown(self):
        if getattr(self, "env", None):
            self.env.close()

    def fill_mid_drain(self, messages):
        """A daemon draining `messages` to the test relay, its disk filled once a tenth are out;
        returns the filler's path (removing it gives the space back)."""
        e = self.env = TmpfsEnv(connections=4, rate=400)
        e.start_server()
        e.import_many(messages)
        e.start_daemon()
        wait_for(lambda: len(e.received()) >= messages // 10, 30, "sending under way")
        filler = os.path.join(e.disk, "filler")
        fill(filler)
        return filler

    def test_a_full_disk_pauses_sending_says_so_once_loses_nothing_and_resumes_by_itself(self):
        filler = self.fill_mid_drain(6000)
        e = self.env
        # Full: sending stops (what was in flight may still finish), and every part says why.
        time.sleep(3)
        before = len(e.received())
        time.sleep(3)
        self.assertLessEqual(len(e.received()) - before, 4, "sending went on with the disk full")
        self.assertIsNone(e.daemon.poll(), "bulkmaild exited on a full disk")
        status, body = healthz(e.http_port)
        self.assertEqual(status, 503, body)
        self.assertIn("database or disk is full", body)
        st = e.ctl("status", check=False)
        self.assertIn(st.returncode, (0, 1), st.stderr)  # an answer or an error, never a crash
        if st.returncode == 1:
            self.assertIn("database", st.stderr.decode())
        # An import into the full disk fails, names the rows it reached, and leaves nothing half.
        path = os.path.join(e.dir, "more.csv")
        with open(path, "w") as f:
            f.write("email,first_name,headline,body\n")
            for i in range(3000):
                f.write("more%d@example.com,Pat,Your plan is changing,Details inside.\n" % i)
        r = e.ctl("import", "--category", "customer-update", "--campaign", "more", path, check=False)
        self.assertEqual(r.returncode, 1)
        err = r.stderr.decode()
        self.assertTrue("lines 2-3001: the database could not record them" in err or "no space left" in err, err)
        self.assertEqual(e.rows("SELECT count(*) FROM messages WHERE campaign = 'more'"), [(0,)])
        # Said once, clearly: not a line per message or per retry.
        log = e.daemon_log()
        full_lines = [line for line in log.splitlines() if "disk is full" in line]
        self.assertLessEqual(len(full_lines), 4, "\n".join(full_lines))
        self.assertIn("dispatch paused: the database is not answering", log)
        # Space returns: it goes on by itself, and everything goes out once.
        os.remove(filler)
        wait_for(lambda: e.counts().get("sent", 0) == 6000, 90, "every message sent after space returned")
        got = e.received()
        self.assertEqual(len(got), 6000, "a message was sent twice")
        self.assertEqual(len(set(got)), 6000)
        self.assertIn("the database is back after", e.daemon_log())
        self.assertEqual(healthz(e.http_port)[0], 200)
        # The same import now goes in whole.
        r = e.ctl("import", "--category", "customer-update", "--campaign", "more", path)
        self.assertIn("queued 3000", r.stdout.decode())

    def test_sigterm_on_a_full_disk_stops_within_the_grace_period_and_the_rest_goes_out_later(self):
        filler = self.fill_mid_drain(3000)
        e = self.env
        time.sleep(2)
        # Senders wait for outcomes the database cannot record; the grace period (3 s) ends that.
        asked = time.time()
        e.daemon.send_signal(signal.SIGTERM)
        e.daemon.wait(20)
        self.assertLess(time.time() - asked, 15)
        self.assertIn("shutdown grace period over", e.daemon_log())
        os.remove(filler)
        e.start_daemon()
        wait_for(lambda: e.counts().get("sent", 0) == 3000, 60, "the rest sent after a restart")
        got = e.received()
        self.assertEqual(len(set(got)), 3000)
        # Outcomes lost with the full disk were deliveries under way: at most one per connection
        # is sent again (the started-deliveries file names them in the log).
        self.assertLessEqual(len(got) - 3000, 4)


class LockedDatabaseTest(unittest.TestCase):
    def tearDown(self):
        self.env.close()

    def test_a_database_locked_past_the_busy_timeout_is_waited_for_not_fatal(self):
        e = self.env = Env(connections=4, rate=400)
        e.start_server()
        e.import_many(3000)
        e.start_daemon()
        wait_for(lambda: len(e.received()) >= 300, 30, "sending under way")
        # Another program takes the write lock and keeps it 15 s: longer than the daemon's 10 s
        # busy timeout.
        locked = threading.Event()

        def hold():
            db = sqlite3.connect(os.path.join(e.dir, "queue.db"), isolation_level=None, timeout=30)
            db.execute("BEGIN EXCLUSIVE")
            locked.set()
            time.sleep(15)
            db.execute("COMMIT")
            db.close()
        t = threading.Thread(target=hold)
        t.start()
        self.assertTrue(locked.wait(30))
        time.sleep(12)
        self.assertIsNone(e.daemon.poll(), "bulkmaild exited while the database was locked")
        t.join()
        wait_for(lambda: e.counts().get("sent", 0) == 3000, 60, "every message sent after the lock")
        got = e.received()
        self.assertEqual(len(got), 3000, "a message was sent twice")
        self.assertEqual(len(set(got)), 3000)
        self.assertIsNone(e.daemon.poll())
        # It did meet the lock, said so, and said when it was over.
        log = e.daemon_log()
        self.assertIn("database is locked", log)
        self.assertIn("the database is back after", log)


if __name__ == "__main__":
    unittest.main()
