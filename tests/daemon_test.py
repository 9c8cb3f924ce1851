"""bulkmaild end to end: the real daemon and CLI against a real SMTP server on loopback
(tests/smtp_server.py, on Debian's aiosmtpd), with a real SQLite file."""
import glob
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from ports import free_port

BIN = os.environ["BULKMAIL_BIN_DIR"]
SRC = os.environ["BULKMAIL_SOURCE_DIR"]
SERVER = os.path.join(SRC, "tests", "smtp_server.py")
SECRET = "0123456789abcdef" * 4
VARS = ["--var", "first_name=Pat", "--var", "headline=Your plan is changing", "--var", "body=Details inside."]
RESEARCH_VARS = ["--var", "first_name=Pat", "--var", "study_name=Plans study", "--var", "duration_minutes=20",
                 "--var", "study_format=a video call", "--var", "incentive=a $25 gift card",
                 "--var", "closes_on=December 12", "--var", "study_url=https://research.example.com/s/1"]


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def received_addresses(out):
    """The recipients smtp_server.py took messages for (its --out folder), in order."""
    path = os.path.join(out, "received.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


class Env:
    """A temp folder with a config, a relay port, and helpers for the CLI, daemon and database."""

    def __init__(self, connections=4, rate=1000, extra=""):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.port = free_port()
        self.http_port = free_port()
        self.out = os.path.join(self.dir, "received")
        for name in ("unsubscribe.key", "api.token"):
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(SECRET + "\n")
        self.config = os.path.join(self.dir, "bulkmail.yaml")
        with open(self.config, "w") as f:
            f.write(f"""database: queue.db
templates: {SRC}/templates
sender:
  organization: Example Telecom, Inc.
  postal_address: 100 Example Parkway, Cary, NC 27513, USA
  from: "Example Telecom <updates@mail.example.com>"
smtp:
  url: smtp://127.0.0.1:{self.port}
  max_connections: {connections}
  connect_timeout_seconds: 2
  message_timeout_seconds: 5
throttle:
  messages_per_second: {rate}
retry:
  initial_delay_seconds: 1
  max_delay_seconds: 2
  max_attempts: 3
daemon:
  lease_seconds: 60
  shutdown_grace_seconds: 3
unsubscribe:
  url: https://mail.example.com/unsubscribe
  secret_file: unsubscribe.key
webhook:
  listen: 127.0.0.1:{self.http_port}
  api_token_file: api.token
categories:
  customer-update: {{ template: customer-update, description: "Updates about your services" }}
  research-invitation: {{ template: research-invitation, description: "Invitations to take part in research" }}
{extra}""")
        self.server = None
        self.daemon = None
        # The README's first step: bulkmaild --check creates the database bulkmailctl uses.
        r = subprocess.run([os.path.join(BIN, "bulkmaild"), "--config", self.config, "--check"],
                           capture_output=True)
        if r.returncode != 0:
            raise AssertionError("bulkmaild --check failed: %s" % r.stderr.decode())

    def close(self):
        for p in (self.daemon, self.server):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        if self.server:
            self.server.stdout.close()
        if getattr(self, "log", None):
            self.log.close()
        self.tmp.cleanup()

    def start_server(self, *args):
        self.server = subprocess.Popen(["/usr/bin/python3", SERVER, "--port",
                                        str(self.port), "--out", self.out, *args], stdout=subprocess.PIPE)
        line = self.server.stdout.readline().decode()
        assert line.startswith("ready"), line

    def stop_server(self):
        self.server.terminate()
        self.server.wait()
        self.server.stdout.close()

    def start_daemon(self):
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(os.path.join(self.dir, "daemon.log"), "ab")
        self.daemon = subprocess.Popen([os.path.join(BIN, "bulkmaild"), "--config", self.config],
                                       stdout=self.log, stderr=self.log)

    def daemon_log(self):
        with open(os.path.join(self.dir, "daemon.log")) as f:
            return f.read()

    def ctl(self, *args, check=True):
        r = subprocess.run([os.path.join(BIN, "bulkmailctl"), "--config", self.config, *args], capture_output=True)
        if check and r.returncode != 0:
            raise AssertionError("bulkmailctl %s failed: %s" % (args, r.stderr.decode()))
        return r

    def enqueue(self, to, category="customer-update", campaign=None):
        args = ["enqueue", "--category", category, "--to", to,
                *(RESEARCH_VARS if category == "research-invitation" else VARS)]
        if campaign:
            args += ["--campaign", campaign]
        return int(self.ctl(*args).stdout)

    def import_many(self, n, campaign="batch", prefix="user"):
        path = os.path.join(self.dir, campaign + ".csv")
        with open(path, "w") as f:
            f.write("email,first_name,headline,body\n")
            for i in range(n):
                f.write("%s%d@example.com,Pat,Your plan is changing,Details inside.\n" % (prefix, i))
        self.ctl("import", "--category", "customer-update", "--campaign", campaign, path)

    def rows(self, sql, *params):
        db = sqlite3.connect(getattr(self, "db_path", os.path.join(self.dir, "queue.db")), timeout=10)
        try:
            return db.execute(sql, params).fetchall()
        finally:
            db.close()

    def state(self, message_id):
        return self.rows("SELECT state, attempts, last_reply_code, last_reply FROM messages WHERE id = ?",
                         message_id)[0]

    def counts(self):
        return dict(self.rows("SELECT state, count(*) FROM messages GROUP BY state"))

    def received(self):
        return received_addresses(self.out)


class DaemonTest(unittest.TestCase):
    def setUp(self):
        self.env = None

    def tearDown(self):
        if self.env:
            self.env.close()

    def draining(self, connections, data_delay_ms, messages):
        """A daemon draining `messages` queued ones into a relay that takes `data_delay_ms` each."""
        e = self.env = Env(connections=connections)
        e.start_server("--data-delay", str(data_delay_ms))
        e.import_many(messages)
        e.start_daemon()
        return e

    def test_every_reply_is_classified(self):
        e = self.env = Env()
        e.start_server()
        ids = {name: e.enqueue(name + "@example.com") for name in ("ok", "bounce", "grey", "spam", "drop", "busy")}
        e.start_daemon()
        wait_for(lambda: e.state(ids["ok"])[0] == "sent" and e.state(ids["bounce"])[0] == "failed"
                 and e.state(ids["spam"])[0] == "failed", 20, "first outcomes")
        self.assertEqual(e.state(ids["ok"])[2], 250)
        # 5xx at RCPT: failed, and the address suppressed for all mail as a hard bounce.
        state, _, code, reply = e.state(ids["bounce"])
        self.assertEqual((state, code), ("failed", 550))
        self.assertIn("User unknown", reply)
        sup = e.rows("SELECT category, reason, source FROM suppressions WHERE address = 'bounce@example.com'")
        self.assertEqual(sup, [("", "hard-bounce", "smtp")])
        # 5xx after DATA: failed, no suppression.
        self.assertEqual(e.state(ids["spam"])[:3], ("failed", 1, 554))
        self.assertEqual(e.rows("SELECT count(*) FROM suppressions WHERE address = 'spam@example.com'"), [(0,)])
        # 4xx, a dropped connection and 421: retried with backoff until max_attempts, then failed.
        wait_for(lambda: all(e.state(ids[n])[0] == "failed" for n in ("grey", "drop", "busy")), 40,
                 "retries to run out")
        for n in ("grey", "drop", "busy"):
            self.assertEqual(e.state(ids[n])[1], 3, n)
            self.assertIn("gave up after 3 attempts", e.state(ids[n])[3])
        self.assertIn("451", e.state(ids["grey"])[3])
        self.assertEqual(e.received(), ["ok@example.com"])
        e.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(e.daemon.wait(10), 0)

    def test_a_suppression_added_while_a_message_waits_wins(self):
        e = self.env = Env()
        e.start_server()
        waiting = e.enqueue("late@example.com", category="research-invitation")
        other = e.enqueue("keep@example.com", category="customer-update")
        e.ctl("suppress", "add", "late@example.com", "--category", "research-invitation", "--reason", "unsubscribe")
        e.start_daemon()
        wait_for(lambda: e.state(other)[0] == "sent", 15, "the other message")
        wait_for(lambda: e.state(waiting)[0] == "suppressed", 5, "the suppressed one")
        self.assertEqual(e.received(), ["keep@example.com"])
        history = e.ctl("history", "late@example.com").stdout.decode()
        self.assertIn("suppressed", history)

    def test_a_suppression_added_while_the_daemon_holds_the_message_wins(self):
        # One slow connection: the daemon claims every message at once and sends them one by one,
        # so the last ones wait, claimed, while an operator suppresses one of them.
        e = self.draining(connections=1, data_delay_ms=200, messages=12)
        wait_for(lambda: len(e.received()) >= 1, 15, "the first delivery")
        self.assertEqual(e.counts().get("queued", 0), 0, "everything is claimed")
        e.ctl("suppress", "add", "user11@example.com", "--reason", "manual")
        e.ctl("suppress", "add", "user10@example.com", "--category", "customer-update", "--reason", "unsubscribe")
        e.ctl("suppress", "add", "user9@example.com", "--category", "research-invitation", "--reason", "unsubscribe")
        wait_for(lambda: e.counts().get("sent", 0) + e.counts().get("suppressed", 0) == 12, 30, "the rest")
        self.assertEqual(e.counts().get("suppressed", 0), 2)
        self.assertNotIn("user11@example.com", e.received())
        self.assertNotIn("user10@example.com", e.received())
        self.assertIn("user9@example.com", e.received())  # another category's opt-out
        self.assertIn("suppressed", e.ctl("history", "user10@example.com").stdout.decode())

    def test_sigterm_mid_drain_finishes_in_flight_and_hands_back_the_rest(self):
        e = self.draining(connections=4, data_delay_ms=300, messages=60)
        wait_for(lambda: len(e.received()) >= 4, 15, "some deliveries")
        e.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(e.daemon.wait(15), 0)
        counts = e.counts()
        self.assertNotIn("sending", counts)
        self.assertEqual(counts.get("sent", 0), len(e.received()))
        self.assertEqual(counts.get("sent", 0) + counts.get("queued", 0), 60)
        self.assertGreater(counts.get("queued", 0), 0)
        # Handed-back messages did not spend an attempt.
        self.assertEqual(e.rows("SELECT max(attempts) FROM messages WHERE state = 'queued'"), [(0,)])
        # A restart sends the rest, each exactly once.
        e.start_daemon()
        wait_for(lambda: e.counts().get("sent", 0) == 60, 60, "the rest")
        self.assertEqual(sorted(e.received()), sorted("user%d@example.com" % i for i in range(60)))

    def test_deliveries_stalled_past_the_grace_period_are_cut_off_and_handed_back(self):
        # The relay never answers the end of the message: SIGTERM waits out the grace period
        # (3 s here), then cuts both connections off, and nothing is lost or counted as tried.
        e = self.draining(connections=2, data_delay_ms=60000, messages=6)
        wait_for(lambda: e.counts().get("sending", 0) == 6, 15, "the claim")
        time.sleep(1)  # both senders are waiting for the relay's reply now
        started = time.time()
        e.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(e.daemon.wait(15), 0)
        took = time.time() - started
        self.assertGreaterEqual(took, 2.5)
        self.assertLess(took, 8, "cut off promptly once the grace period ended")
        self.assertIn("aborting 2 deliveries", e.daemon_log())
        self.assertEqual(e.counts(), {"queued": 6})
        self.assertEqual(e.rows("SELECT max(attempts) FROM messages"), [(0,)])
        self.assertEqual(e.received(), [])

    def test_kill_9_mid_drain_loses_nothing_and_duplicates_at_most_one_per_connection(self):
        connections = 4
        e = self.draining(connections=connections, data_delay_ms=20, messages=400)
        wait_for(lambda: len(e.received()) >= 50, 30, "deliveries to start")
        e.daemon.kill()
        e.daemon.wait()
        self.assertLess(e.counts().get("sent", 0), 400, "killed too late to test anything")
        e.start_daemon()
        wait_for(lambda: e.counts().get("sent", 0) == 400, 90, "every message sent")
        received = e.received()
        expected = {"user%d@example.com" % i for i in range(400)}
        self.assertEqual(set(received), expected, "every message delivered")
        duplicates = len(received) - len(expected)
        self.assertLessEqual(duplicates, connections)
        if duplicates:
            self.assertIn("possible duplicate", e.daemon_log())
        # Only messages whose delivery had begun are named: at most one per connection, not every
        # message the killed daemon had claimed.
        self.assertLessEqual(e.daemon_log().count("possible duplicate"), connections)
        # Outcomes the killed daemon had only journaled were committed by the new one, and the
        # journal is emptied as outcomes are committed.
        wait_for(lambda: not glob.glob(os.path.join(e.dir, "queue.db-outcomes.*")), 5, "an empty journal")

    def test_relay_down_then_up_resumes_without_spending_attempts(self):
        e = self.env = Env(connections=2)
        e.import_many(20)
        e.start_daemon()  # nothing listens on the relay's port yet
        wait_for(lambda: e.rows("SELECT state FROM dispatch_state") == [("paused",)], 20, "dispatch to pause")
        status = e.ctl("status").stdout.decode()
        self.assertIn("dispatch: paused", status)
        self.assertEqual(e.counts().get("failed", 0), 0)
        e.start_server()
        wait_for(lambda: e.counts().get("sent", 0) == 20, 90, "delivery to resume")
        self.assertEqual(e.counts().get("failed", 0), 0)
        self.assertLessEqual(e.rows("SELECT max(attempts) FROM messages")[0][0], 1)
        wait_for(lambda: e.rows("SELECT state FROM dispatch_state") == [("running",)], 5, "running state")

    def test_the_throttle_never_sends_faster_than_configured(self):
        # A lower bound only: noise can make a run slower, never a correct throttle faster.
        e = self.env = Env(connections=4, rate=20)
        e.start_server()
        e.import_many(60)
        started = time.time()
        e.start_daemon()
        wait_for(lambda: len(e.received()) == 60, 30, "all 60")
        elapsed = time.time() - started
        # 60 messages at 20/s with a burst of 2: at least (60 - 3) / 20 seconds.
        self.assertGreaterEqual(elapsed, (60 - 3) / 20.0)

    def test_smtp_auth(self):
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "pw"), "w") as f:
                f.write("s3cret-relay-password\n")
            e = self.env = Env(extra="")
            with open(e.config) as f:
                cfg = f.read()
            with open(e.config, "w") as f:
                f.write(cfg.replace("  connect_timeout_seconds: 2\n", "  connect_timeout_seconds: 2\n  username: bulk\n"
                                    "  password_file: %s\n" % os.path.join(d, "pw")))
            e.start_server("--auth", "bulk:s3cret-relay-password")
            m = e.enqueue("authed@example.com")
            e.start_daemon()
            wait_for(lambda: e.state(m)[0] == "sent", 15, "an authenticated delivery")
            e.daemon.send_signal(signal.SIGTERM)
            self.assertEqual(e.daemon.wait(10), 0)
            self.assertNotIn("s3cret", e.daemon_log())  # secrets are never logged
            # A wrong password is the relay refusing us, not the message: nothing fails.
            with open(os.path.join(d, "pw"), "w") as f:
                f.write("wrong-password\n")
            m2 = e.enqueue("second@example.com")
            e.start_daemon()
            wait_for(lambda: e.rows("SELECT state FROM dispatch_state") == [("paused",)], 20, "a pause")
            # The pause can reach the database a moment before the handed-back message does (its
            # outcome is journaled first and committed with the next group, within 20 ms).
            wait_for(lambda: e.state(m2)[0] != "sending", 5, "the message handed back")
            self.assertEqual(e.state(m2)[0], "queued")
            self.assertEqual(e.state(m2)[1], 0)
            self.assertNotIn("wrong-password", e.daemon_log())

    def test_starttls_is_verified_and_required(self):
        with tempfile.TemporaryDirectory() as d:
            def openssl(*args):
                subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
            openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=bulkmail test CA", "-days", "2")
            openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                    "relay.key", "-out", "relay.csr", "-subj", "/CN=127.0.0.1")
            with open(os.path.join(d, "san.ext"), "w") as f:
                f.write("subjectAltName=IP:127.0.0.1\n")
            openssl("x509", "-req", "-in", "relay.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                    "-out", "relay.pem", "-days", "2", "-extfile", "san.ext")
            e = self.env = Env(connections=2)
            with open(e.config) as f:
                plain_cfg = f.read()
            tls = "  connect_timeout_seconds: 2\n  tls: required\n"
            with open(e.config, "w") as f:
                f.write(plain_cfg.replace("  connect_timeout_seconds: 2\n",
                                          tls + "  ca_file: %s\n" % os.path.join(d, "ca.pem")))
            e.start_server("--tls", os.path.join(d, "relay.pem") + ":" + os.path.join(d, "relay.key"))
            m = e.enqueue("secure@example.com")
            e.start_daemon()
            wait_for(lambda: e.state(m)[0] == "sent", 15, "a delivery over STARTTLS")
            with open(os.path.join(e.out, "received.log")) as f:
                self.assertEqual(f.read().split()[2], "tls")
            e.daemon.send_signal(signal.SIGTERM)
            self.assertEqual(e.daemon.wait(10), 0)

            # Without the private CA the certificate does not verify: nothing goes out in clear.
            with open(e.config, "w") as f:
                f.write(plain_cfg.replace("  connect_timeout_seconds: 2\n", tls))
            m2 = e.enqueue("unverified@example.com")
            e.start_daemon()
            wait_for(lambda: e.rows("SELECT state FROM dispatch_state") == [("paused",)], 20, "a pause")
            wait_for(lambda: e.state(m2)[0] != "sending", 5, "the message handed back")  # see test_smtp_auth
            self.assertEqual(e.state(m2)[:2], ("queued", 0))
            # The operator is told why, where they look: status, and the message's history.
            self.assertIn("dispatch: paused (the relay is not accepting mail (SSL certificate problem",
                          e.ctl("status").stdout.decode())
            self.assertRegex(e.ctl("history", "unverified@example.com").stdout.decode(),
                             r"released .* SSL certificate problem")
            e.daemon.send_signal(signal.SIGTERM)
            self.assertEqual(e.daemon.wait(10), 0)

            # A relay that offers no STARTTLS (or a man in the middle who strips it from the EHLO
            # answer) is refused when TLS is required.
            e.stop_server()
            e.start_server()
            e.start_daemon()
            wait_for(lambda: e.rows("SELECT state FROM dispatch_state") == [("paused",)], 20, "a pause")
            self.assertIn("(STARTTLS not supported.)", e.ctl("status").stdout.decode())
            self.assertEqual(e.state(m2)[:2], ("queued", 0))
            e.daemon.send_signal(signal.SIGTERM)
            self.assertEqual(e.daemon.wait(10), 0)

            # One that offers STARTTLS and then refuses it (454): nothing goes in clear either.
            e.stop_server()
            with open(e.config, "w") as f:
                f.write(plain_cfg.replace("  connect_timeout_seconds: 2\n",
                                          tls + "  ca_file: %s\n" % os.path.join(d, "ca.pem")))
            e.start_server("--tls", os.path.join(d, "relay.pem") + ":" + os.path.join(d, "relay.key"),
                           "--refuse-starttls")
            e.start_daemon()
            wait_for(lambda: e.rows("SELECT state FROM dispatch_state") == [("paused",)], 20, "a pause")
            self.assertIn("(STARTTLS denied, code 454)", e.ctl("status").stdout.decode())
            self.assertEqual(e.state(m2)[:2], ("queued", 0))
            self.assertEqual(e.received(), ["secure@example.com"])

    def test_systemd_notify_protocol(self):
        e = self.env = Env()
        e.start_server()
        path = os.path.join(e.dir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
        env.pop("WATCHDOG_PID", None)  # when set, libsystemd only honours it for that process
        log = open(os.path.join(e.dir, "daemon.log"), "ab")
        daemon = subprocess.Popen([os.path.join(BIN, "bulkmaild"), "--config", e.config], stdout=log, stderr=log,
                                  env=env)
        got = []

        def read_until(word):
            while True:
                msg = sock.recv(4096).decode()
                got.append(msg)
                if word in msg:
                    return msg
        try:
            self.assertIn("READY=1", read_until("READY=1"))
            read_until("WATCHDOG=1")
            read_until("WATCHDOG=1")  # from a timer on the loop: it keeps coming
            self.assertTrue(read_until("STATUS=").startswith("STATUS="))
            daemon.send_signal(signal.SIGHUP)
            self.assertIn("MONOTONIC_USEC=", read_until("RELOADING=1"))
            read_until("READY=1")  # after the reload
            daemon.send_signal(signal.SIGTERM)
            read_until("STOPPING=1")
            self.assertEqual(daemon.wait(10), 0)
        finally:
            if daemon.poll() is None:
                daemon.kill()
            sock.close()
            log.close()
        status = [m for m in got if m.startswith("STATUS=")]
        self.assertTrue(any("sent" in m for m in status), status)

    def test_a_domain_answering_4xx_slows_down_alone_and_hands_back_its_buffer(self):
        e = self.env = Env(connections=2, extra="")
        with open(e.config) as f:
            cfg = f.read()
        with open(e.config, "w") as f:  # long retries: only the domain's own pause is in play
            f.write(cfg.replace("  initial_delay_seconds: 1\n  max_delay_seconds: 2\n",
                                "  initial_delay_seconds: 600\n  max_delay_seconds: 600\n"))
        e.start_server()
        path = os.path.join(e.dir, "slow.csv")
        with open(path, "w") as f:
            f.write("email,first_name,headline,body\n")
            for i in range(12):
                f.write("throttle%d@slow.example,Pat,Hi,Body\n" % i)
        e.ctl("import", "--category", "customer-update", "--campaign", "slow", path)
        e.start_daemon()
        fast = e.enqueue("ok@fast.example")
        wait_for(lambda: e.state(fast)[0] == "sent", 10, "the other domain, not held back")
        # Pauses of 1, 2, 4, 8, then 16 s: past 10 s the domain's buffer goes back to the queue.
        handed_back = lambda: e.rows("SELECT count(*) FROM messages WHERE recipient LIKE '%@slow.example' "
                                     "AND state = 'queued' AND attempts = 0 AND last_reply LIKE '%slowed down%'")[0][0]
        wait_for(lambda: handed_back() > 0, 40, "the slowed domain to hand its buffer back")
        self.assertEqual(e.counts().get("failed", 0), 0)
        self.assertNotIn("sending", e.counts())
        self.assertIsNone(e.daemon.poll())

    def test_an_idle_daemon_does_not_spin(self):
        e = self.env = Env()
        e.start_server()
        e.start_daemon()
        time.sleep(1)  # started, found nothing due

        def cpu_seconds():
            with open("/proc/%d/stat" % e.daemon.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        before = cpu_seconds()
        time.sleep(3)
        used = cpu_seconds() - before
        # Polling an empty queue five times a second costs next to nothing; a loop that claims on
        # every turn burns most of a core (about 2 s of these 3).
        self.assertLess(used, 0.5, "an idle daemon used %.2f s of CPU in 3 s" % used)
        mid = e.enqueue("late@example.com")
        wait_for(lambda: e.state(mid)[0] == "sent", 5, "a message queued later to be sent")

    def test_senders_run_below_the_rest_of_the_daemon(self):
        # Deliveries yield the CPU to the webhook and the store writer: exactly the four sender
        # threads (smtp.max_connections) run at nice +10, every other thread at the daemon's own.
        e = self.env = Env(connections=4)
        e.start_server()
        e.start_daemon()
        mid = e.enqueue("pat@example.com")
        wait_for(lambda: e.state(mid)[0] == "sent", 15, "a delivery")
        own = os.getpriority(os.PRIO_PROCESS, e.daemon.pid)
        nice = []
        for tid in os.listdir("/proc/%d/task" % e.daemon.pid):
            with open("/proc/%d/task/%s/stat" % (e.daemon.pid, tid)) as f:
                nice.append(int(f.read().rsplit(")", 1)[1].split()[16]))
        self.assertEqual(sorted(nice).count(min(own + 10, 19)), 4, nice)
        self.assertEqual(len(nice) - 4, nice.count(own), nice)

    def test_a_second_daemon_on_the_same_database_is_refused(self):
        e = self.env = Env()
        e.start_server()
        e.start_daemon()
        wait_for(lambda: "bulkmaild started" in e.daemon_log(), 10, "the first daemon")
        r = subprocess.run([os.path.join(BIN, "bulkmaild"), "--config", e.config], capture_output=True, timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"another bulkmaild is already running", r.stderr)

    def test_sighup_reloads_and_a_broken_config_is_kept_out(self):
        e = self.env = Env()
        e.start_server()
        e.start_daemon()
        wait_for(lambda: "bulkmaild started" in e.daemon_log(), 10, "start")
        with open(e.config) as f:
            good = f.read()
        with open(e.config, "w") as f:
            f.write(good.replace("messages_per_second: 1000", "messages_per_second: -3"))
        e.daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "keeping the one in effect" in e.daemon_log(), 10, "the refusal")
        self.assertIn("throttle.messages_per_second: must not be negative", e.daemon_log())
        with open(e.config, "w") as f:
            f.write(good)
        e.daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in e.daemon_log(), 10, "the reload")
        m = e.enqueue("after-reload@example.com")
        wait_for(lambda: e.state(m)[0] == "sent", 10, "a send after reload")
        self.assertIsNone(e.daemon.poll())

    def test_retention_deletes_old_messages_and_events_but_never_an_opt_outs_evidence(self):
        e = self.env = Env(extra="retention:\n  message_days: 30\n  event_days: 60\n")
        e.start_server()
        old = e.enqueue("old@example.com")
        recent = e.enqueue("recent@example.com")
        e.ctl("suppress", "add", "gone@example.com", "--reason", "unsubscribe")
        e.start_daemon()
        wait_for(lambda: e.state(old)[0] == "sent" and e.state(recent)[0] == "sent", 20, "sends")
        e.daemon.send_signal(signal.SIGTERM)
        self.assertEqual(e.daemon.wait(10), 0)
        # As if 90 days had passed for the old message and every event.
        day = 86400 * 1000
        db = sqlite3.connect(os.path.join(e.dir, "queue.db"))
        db.execute("UPDATE messages SET created_at = created_at - 90 * ?, updated_at = updated_at - 90 * ? "
                   "WHERE id = ?", (day, day, old))
        db.execute("DROP TRIGGER events_no_update")  # this test's time travel only
        db.execute("UPDATE events SET at = at - 90 * ?", (day,))
        db.commit()
        db.close()
        e.start_daemon()  # its first retention pass runs 10 s after start
        wait_for(lambda: e.rows("SELECT count(*) FROM messages") == [(1,)], 30, "retention")
        self.assertEqual(e.rows("SELECT recipient FROM messages"), [("recent@example.com",)])
        wait_for(lambda: "retention: deleted 1 finished messages" in e.daemon_log(), 10, "its log")
        # Every event went but the opt-out's evidence (and what the restart wrote since).
        self.assertEqual(e.rows("SELECT type, address FROM events WHERE at < ?",
                                int(time.time() * 1000) - 60 * day),
                         [("suppression-added", "gone@example.com")])
        self.assertEqual(e.rows("SELECT count(*) FROM suppressions"), [(1,)])


if __name__ == "__main__":
    unittest.main()
