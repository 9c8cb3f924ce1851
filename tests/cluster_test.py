"""Several bulkmaild processes on one PostgreSQL database (issue 16): a real PostgreSQL server
(tests/postgres_server.py), three daemons, and the scripted SMTP relay (tests/smtp_server.py)
that records every delivery, all on loopback. Checked: every message delivered exactly once while
the daemons share the queue; with one daemon killed -9 mid-drain, every message still delivered,
duplicates at most that daemon's connections, each rescue logged as a possible duplicate.

Needs Debian's postgresql (scripts/setup installs it); as root, the server runs as postgres."""
import os
import re
import subprocess
import tempfile
import unittest

from daemon_test import SECRET, free_port, received_addresses, wait_for
from postgres_server import PostgresServer

BIN = os.environ["BULKMAIL_BIN_DIR"]
SRC = os.environ["BULKMAIL_SOURCE_DIR"]
SERVER = os.path.join(SRC, "tests", "smtp_server.py")


class Cluster:
    """One database, one relay, `n` daemon configs (each its own webhook port)."""

    def __init__(self, pg, n, connections, data_delay_ms):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.pg = pg
        self.connections = connections
        self.port = free_port()
        self.out = os.path.join(self.dir, "received")
        os.makedirs(self.out)
        for name in ("unsubscribe.key", "api.token"):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(SECRET + "\n")
            os.chmod(os.path.join(self.dir, name), 0o600)
        self.configs = [self.write_config(i) for i in range(n)]
        self.server = subprocess.Popen(["/usr/bin/python3", SERVER, "--port", str(self.port),
                                        "--out", self.out, "--data-delay", str(data_delay_ms)],
                                       stdout=subprocess.PIPE)
        assert self.server.stdout.readline().decode().startswith("ready")
        self.daemons = [None] * n
        self.logs = [os.path.join(self.dir, "daemon%d.log" % i) for i in range(n)]
        r = subprocess.run([os.path.join(BIN, "bulkmaild"), "--config", self.configs[0], "--check"],
                           capture_output=True)
        assert r.returncode == 0, r.stderr.decode()

    def write_config(self, i):
        path = os.path.join(self.dir, "bulkmail%d.yaml" % i)
        with open(path, "w") as f:
            f.write(f"""database: "{self.pg.uri}"
templates: {SRC}/templates
sender:
  organization: Example Telecom, Inc.
  postal_address: 100 Example Parkway, Cary, NC 27513, USA
  from: "Example Telecom <updates@mail.example.com>"
smtp:
  url: smtp://127.0.0.1:{self.port}
  max_connections: {self.connections}
  connect_timeout_seconds: 2
  message_timeout_seconds: 5
throttle:
  messages_per_second: 10000
daemon:
  lease_seconds: 30
  shutdown_grace_seconds: 3
unsubscribe:
  url: https://mail.example.com/unsubscribe
  secret_file: unsubscribe.key
webhook:
  listen: 127.0.0.1:{free_port()}
  api_token_file: api.token
categories:
  customer-update: {{ template: customer-update, description: "Updates about your services" }}
""")
        return path

    def start(self, i):
        log = open(self.logs[i], "ab")
        self.daemons[i] = subprocess.Popen([os.path.join(BIN, "bulkmaild"), "--config", self.configs[i]],
                                           stdout=log, stderr=log)
        log.close()

    def log(self, i):
        with open(self.logs[i], errors="replace") as f:
            return f.read()

    def import_many(self, n):
        path = os.path.join(self.dir, "batch.csv")
        with open(path, "w") as f:
            f.write("email,first_name,headline,body\n")
            for i in range(n):
                f.write("user%d@example.com,Pat,Your plan is changing,Details inside.\n" % i)
        r = subprocess.run([os.path.join(BIN, "bulkmailctl"), "--config", self.configs[0], "import",
                            "--category", "customer-update", "--campaign", "batch", path],
                           capture_output=True)
        assert r.returncode == 0, r.stderr.decode()

    def sql(self, query):
        r = subprocess.run(["psql", "-Atq", "-d", self.pg.uri, "-c", query], capture_output=True, check=True)
        return r.stdout.decode().strip()

    def sent(self):
        return int(self.sql("SELECT count(*) FROM messages WHERE state = 'sent'"))

    def received(self):
        return received_addresses(self.out)

    def close(self):
        for p in self.daemons + [self.server]:
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.server.stdout.close()
        self.tmp.cleanup()


class ClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresServer().start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.remove()

    def setUp(self):
        # Each test on an empty database.
        subprocess.run(["psql", "-Atq", "-d", self.pg.uri, "-c",
                        "DROP SCHEMA public CASCADE; CREATE SCHEMA public"], check=True, capture_output=True)

    def cluster(self, **kw):
        c = Cluster(self.pg, **kw)
        self.addCleanup(c.close)
        return c

    def test_three_daemons_deliver_every_message_exactly_once(self):
        c = self.cluster(n=3, connections=4, data_delay_ms=5)
        c.import_many(3000)
        for i in range(3):
            c.start(i)
        wait_for(lambda: c.sent() == 3000, 120, "every message sent")
        received = c.received()
        self.assertEqual(len(received), 3000, "delivered exactly once: no duplicates")
        self.assertEqual(set(received), {"user%d@example.com" % i for i in range(3000)})
        # The three shared the work: each says what it sent when it stops, and together that is
        # every message.
        counts = []
        for i in range(3):
            c.daemons[i].terminate()
            c.daemons[i].wait(30)
            stopped = re.search(r"stopped: sent (\d+)", c.log(i))
            self.assertIsNotNone(stopped, c.log(i))
            counts.append(int(stopped.group(1)))
            self.assertNotIn("possible duplicate", c.log(i))
        self.assertEqual(sum(counts), 3000, counts)
        self.assertTrue(all(n > 0 for n in counts), counts)

    def test_kill_9_of_one_daemon_loses_nothing_and_duplicates_at_most_its_connections(self):
        connections = 4
        c = self.cluster(n=3, connections=connections, data_delay_ms=20)
        c.import_many(2000)
        for i in range(3):
            c.start(i)
        wait_for(lambda: len(c.received()) >= 300, 60, "deliveries to start")
        c.daemons[0].kill()
        c.daemons[0].wait()
        self.assertLess(c.sent(), 2000, "killed too late to test anything")
        # Its leases run out (30 s) and the others rescue its messages.
        wait_for(lambda: c.sent() == 2000, 150, "every message sent by the two left")
        received = c.received()
        expected = {"user%d@example.com" % i for i in range(2000)}
        self.assertEqual(set(received), expected, "every message delivered")
        duplicates = len(received) - len(expected)
        self.assertLessEqual(duplicates, connections)
        rescued = c.log(1).count("possible duplicate") + c.log(2).count("possible duplicate")
        self.assertGreater(rescued, 0, "the dead daemon's messages were rescued, and logged")
        self.assertEqual(c.sql("SELECT count(*) FROM messages WHERE state <> 'sent'"), "0")


if __name__ == "__main__":
    unittest.main()
