"""Checks that tests/postfix_instance.py gives bulkmail's end-to-end tests the relay they expect,
with no bulkmail involved: mail goes in with smtplib, and the bounce intake is a small Python
script that stores what the pipe(8) transport hands it.

Needs root and Debian's postfix package; skipped otherwise.
Run: cd tests && python3 -m unittest postfix_instance_test -v
"""
import email
import email.policy
import glob
import hashlib
import json
import os
import shutil
import smtplib
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import postfix_instance  # noqa: E402
from postfix_instance import PostfixError, PostfixInstance, available  # noqa: E402

BOUNCES = "bounces.example.test"

# The bounce intake stand-in, run by pipe(8) as nobody:
#   intake.py OUTDIR --recipient RCPT --sender SENDER --queue-id ID
# It exits 75 (EX_TEMPFAIL) while OUTDIR/tempfail-RCPT exists; otherwise it stores the message
# as OUTDIR/NAME.eml and what it was run with as OUTDIR/NAME.json (written under a dot name and
# renamed, so a reader never sees half a file).
INTAKE = r'''
import json, os, sys, time
out = sys.argv[1]
opts = dict(zip(sys.argv[2::2], sys.argv[3::2]))
rcpt = opts["--recipient"]
if os.path.exists(os.path.join(out, "tempfail-" + rcpt)):
    print("bounce intake busy, try again later")
    sys.exit(75)
data = sys.stdin.buffer.read()
name = "%d-%d" % (time.time_ns(), os.getpid())
meta = {"argv": sys.argv[1:], "opts": opts, "env": dict(os.environ), "uid": os.getuid()}
for ext, blob in ((".eml", data), (".json", json.dumps(meta).encode())):
    tmp = os.path.join(out, "." + name + ext)
    with open(tmp, "wb") as f:
        f.write(blob)
    os.rename(tmp, os.path.join(out, name + ext))
'''


def wait_until(predicate, timeout, what):
    """Polls predicate until it returns something true; fails the test after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %.0f s" % (what, timeout))
        time.sleep(0.1)


def snapshot(paths):
    """A digest of the names, owners, modes, sizes and mtimes under paths: the machine's own
    Postfix must look the same before and after."""
    h = hashlib.sha256()
    for top in paths:
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in [""] + sorted(files):
                p = os.path.join(root, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                h.update(("%s %o %d %d %d %d\n" % (p, st.st_mode, st.st_uid, st.st_gid,
                                                   st.st_size, st.st_mtime_ns)).encode())
    return h.hexdigest()


@unittest.skipUnless(available(), "needs root and Postfix (/usr/sbin/postfix)")
class RelayTest(unittest.TestCase):
    """One instance for all the mail tests (starting Postfix takes about 2 s); each test uses
    its own envelope sender, so the messages the intake stores never mix."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="postfix-instance-test-")
        # mkdtemp makes 0700: the postfix user must search it, nobody must run the intake and
        # write its output.
        os.chmod(cls.tmp, 0o755)
        cls.out = os.path.join(cls.tmp, "intake")
        os.mkdir(cls.out)
        os.chmod(cls.out, 0o777)
        intake = os.path.join(cls.tmp, "intake.py")
        with open(intake, "w") as f:
            f.write(INTAKE)
        os.chmod(intake, 0o644)
        cls.relay = PostfixInstance(
            os.path.join(cls.tmp, "relay"), bounce_domain=BOUNCES,
            pipe_argv=[sys.executable, intake, cls.out, "--recipient", "${recipient}",
                       "--sender", "${sender}", "--queue-id", "${queue_id}"])
        cls.relay.start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.relay.stop()
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    def send(self, sender, recipients, subject="test"):
        msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s.%d@example.test>\r\n"
               "\r\nHello.\r\n" % (sender, recipients[0], subject, subject, time.time_ns()))
        with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as s:
            refused = s.sendmail(sender, recipients, msg.encode())
        self.assertEqual(refused, {})
        return time.monotonic()

    def delivered(self, recipient):
        """What the intake stored for recipient so far: [(meta, message)], oldest first."""
        found = []
        for meta_path in sorted(glob.glob(os.path.join(self.out, "*.json"))):
            with open(meta_path) as f:
                meta = json.load(f)
            if meta["opts"]["--recipient"] != recipient:
                continue
            with open(meta_path[:-5] + ".eml", "rb") as f:
                found.append((meta, email.message_from_bytes(f.read(), policy=email.policy.compat32)))
        return found

    def wait_dsn(self, recipient, action, timeout=20):
        """The first report to recipient whose delivery-status part has Action: action."""
        def find():
            for meta, msg in self.delivered(recipient):
                for rcpt in dsn_recipients(msg):
                    if rcpt.get("Action", "").lower() == action:
                        return meta, msg, rcpt
            return None
        try:
            return wait_until(find, timeout, "a %s DSN to %s" % (action, recipient))
        except AssertionError:
            print(self.relay.log_text()[-5000:], file=sys.stderr)
            raise

    # -- the tests -----------------------------------------------------------------------------

    def test_hard_domain_gets_a_real_5_1_1_dsn(self):
        sender = "b-hard1@" + BOUNCES
        sent = self.send(sender, ["someone@hard.example.test"])
        meta, msg, rcpt = self.wait_dsn(sender, "failed")
        elapsed = time.monotonic() - sent
        self.assertLess(elapsed, 20)
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(msg.get_param("report-type"), "delivery-status")
        self.assertEqual(msg["Return-Path"], "<>")  # null_sender= : not <MAILER-DAEMON>
        self.assertEqual(msg["To"], sender)
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; someone@hard.example.test")
        self.assertEqual(rcpt["Status"], "5.1.1")
        self.assertEqual(rcpt["Diagnostic-Code"], "X-Postfix; user unknown")
        # The returned message is the one sent.
        returned = [p for p in msg.walk() if p.get_content_type() == "message/rfc822"]
        self.assertEqual(len(returned), 1)
        self.assertIn("someone@hard.example.test", returned[0].get_payload(0)["To"])
        # What the intake was run with: the VERP address as its one --recipient argument, an
        # empty ${sender}, as nobody, and no recipient in the environment.
        self.assertEqual(meta["opts"]["--sender"], "")
        self.assertRegex(meta["opts"]["--queue-id"], r"^[0-9A-F]+$")
        self.assertEqual(meta["uid"], 65534)
        for var in ("ORIGINAL_RECIPIENT", "RECIPIENT", "SENDER"):
            self.assertNotIn(var, meta["env"])
        print("\n  hard DSN at the intake %.2f s after the SMTP transaction" % elapsed,
              file=sys.stderr)

    def test_one_message_to_all_three_kinds_of_domain(self):
        # Postfix writes one DSN per kind of news: the failed one names only the hard
        # recipient, the delayed one only the soft recipient, and the ok recipient is in none.
        sender = "b-test@" + BOUNCES
        self.send(sender, ["user@hard.example.test", "user@soft.example.test",
                           "user@ok.example.test"])
        _, failed, _ = self.wait_dsn(sender, "failed")
        _, delayed, _ = self.wait_dsn(sender, "delayed")
        self.assertEqual([(r["Final-Recipient"], r["Status"]) for r in dsn_recipients(failed)],
                         [("rfc822; user@hard.example.test", "5.1.1")])
        self.assertEqual([(r["Final-Recipient"], r["Status"]) for r in dsn_recipients(delayed)],
                         [("rfc822; user@soft.example.test", "4.2.2")])
        self.assertEqual(delayed["Subject"], "Delayed Mail (still being retried)")
        self.relay.wait_for_log(r"to=<user@ok\.example\.test>.* status=sent ")
        for _, msg in self.delivered(sender):
            self.assertNotIn("user@ok.example.test", str(dsn_recipients(msg)))

    def test_accept_domain_is_delivered_without_a_dsn(self):
        sender = "b-ok1@" + BOUNCES
        self.send(sender, ["someone@ok.example.test"])
        m = self.relay.wait_for_log(r"(\w+): to=<someone@ok\.example\.test>.* status=sent ")
        queue_id = m.group(1)
        self.relay.wait_for_log(r"%s: removed" % queue_id)
        # A DSN would have been queued before the message left the queue; none was, and the
        # intake got nothing.
        self.assertNotRegex(self.relay.log_text(), r"%s: sender \S+ notification" % queue_id)
        self.assertNotIn(queue_id, self.relay.queue_ids())
        self.assertEqual(self.delivered(sender), [])

    def test_soft_domain_gets_delayed_then_failed_dsn(self):
        sender = "b-soft1@" + BOUNCES
        sent = self.send(sender, ["someone@soft.example.test"])
        meta, msg, rcpt = self.wait_dsn(sender, "delayed", timeout=15)
        elapsed = time.monotonic() - sent
        self.assertEqual(msg.get_content_type(), "multipart/report")
        self.assertEqual(rcpt["Final-Recipient"], "rfc822; someone@soft.example.test")
        self.assertEqual(rcpt["Status"], "4.2.2")
        self.assertEqual(rcpt["Diagnostic-Code"], "X-Postfix; mailbox full")
        self.assertIn("Will-Retry-Until", rcpt)
        print("\n  delayed DSN at the intake %.2f s after the SMTP transaction" % elapsed,
              file=sys.stderr)
        # Still queued, deferred; expire it and the next attempt returns it for good. Postfix
        # keeps the last 4.x.x status in the failed DSN.
        queued = [m for m in self.relay.queue() if m["sender"] == sender]
        self.assertEqual(len(queued), 1)
        self.assertEqual(queued[0]["recipients"][0]["address"], "someone@soft.example.test")
        self.relay.expire([queued[0]["queue_id"]])
        self.relay.flush()
        meta, msg, rcpt = self.wait_dsn(sender, "failed", timeout=10)
        self.assertEqual(rcpt["Status"], "4.2.2")
        self.assertEqual(msg["Subject"], "Undelivered Mail Returned to Sender")
        wait_until(lambda: not [m for m in self.relay.queue() if m["sender"] == sender], 10,
                   "the expired message leaving the queue")

    def test_intake_exit_75_defers_and_flush_delivers(self):
        sender = "b-retry1@" + BOUNCES
        marker = os.path.join(self.out, "tempfail-" + sender)
        open(marker, "w").close()
        try:
            self.send(sender, ["someone@hard.example.test"])
            m = self.relay.wait_for_log(
                r"(\w+): to=<%s>, relay=bouncepipe, .* status=deferred "
                r"\(temporary failure\. Command output: bounce intake busy" % sender.replace(".", r"\."))
            dsn_id = m.group(1)
            self.assertIn(dsn_id, self.relay.queue_ids())
            self.assertEqual(self.delivered(sender), [])
            # It is retried (every second here) and stays queued while the intake says 75.
            self.relay.flush()
            time.sleep(1.5)
            self.assertIn(dsn_id, self.relay.queue_ids())
        finally:
            os.unlink(marker)
        self.relay.flush()
        meta, msg, rcpt = self.wait_dsn(sender, "failed", timeout=10)
        self.assertEqual(rcpt["Status"], "5.1.1")
        self.assertEqual(meta["opts"]["--queue-id"], dsn_id)
        wait_until(lambda: dsn_id not in self.relay.queue_ids(), 10, "the DSN leaving the queue")

    def test_mail_to_the_bounce_domain_reaches_the_intake_as_sent(self):
        # A complaint feed (fbl@) or any other mail to the bounce domain: the intake gets the
        # message with its envelope sender in Return-Path.
        self.send("arf@isp.example.test", ["fbl@" + BOUNCES], subject="complaint")
        meta, msg = wait_until(lambda: self.delivered("fbl@" + BOUNCES), 20,
                               "the intake getting fbl@")[0]
        self.assertEqual(msg["Return-Path"], "<arf@isp.example.test>")
        self.assertEqual(msg["Subject"], "complaint")
        self.assertEqual(meta["opts"]["--sender"], "arf@isp.example.test")


@unittest.skipUnless(available(), "needs root and Postfix (/usr/sbin/postfix)")
class LifecycleTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="postfix-instance-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def make(self, **kw):
        return PostfixInstance(os.path.join(self.tmp, "relay"), bounce_domain=BOUNCES,
                               pipe_argv=["/bin/true", "${recipient}"], **kw)

    def test_refuses_a_workdir_the_postfix_user_cannot_reach(self):
        # mkdtemp's 0700: Postfix's master would fail to open its lock file there.
        relay = self.make()
        with self.assertRaisesRegex(PostfixError, "not searchable by the postfix user"):
            relay.start()
        relay.stop()

    def test_stop_takes_everything_down_and_leaves_the_machine_alone(self):
        os.chmod(self.tmp, 0o755)
        before = snapshot(["/etc/postfix", "/var/spool/postfix"])
        with self.make() as relay:
            pid = relay._master_pid
            self.assertTrue(pid and os.path.exists("/proc/%d" % pid))
            with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as s:
                self.assertTrue(s.recv(100).startswith(b"220 relay.example.test ESMTP"))
            self.assertEqual(relay.queue_ids(), [])
            self.assertIn("daemon started", relay.log_text())
            port = relay.port
        # The master is gone (or a zombie nobody reaps), and nothing listens any more.
        self.assertFalse(postfix_instance._alive(pid))
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        relay.stop()  # again: a no-op
        self.assertEqual(snapshot(["/etc/postfix", "/var/spool/postfix"]), before)

    def test_a_fixed_port_is_used(self):
        os.chmod(self.tmp, 0o755)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.make(port=port) as relay:
            self.assertEqual(relay.port, port)
            self.assertEqual(relay.relay_url, "smtp://127.0.0.1:%d" % port)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                self.assertTrue(c.recv(100).startswith(b"220"))


def dsn_recipients(msg):
    """The per-recipient field groups of a DSN's message/delivery-status part, as dicts."""
    out = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        # compat32 parses message/delivery-status as a list of header blocks: the per-message
        # block first, then one per recipient.
        blocks = part.get_payload()
        for block in blocks[1:]:
            out.append({k: " ".join(v.split()) for k, v in block.items()})
    return out


if __name__ == "__main__":
    unittest.main()
