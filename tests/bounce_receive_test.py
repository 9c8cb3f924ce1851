"""Bounces and complaints that come back by mail, end to end: the real bulkmaild sends, reports
come back to `bulkmailctl bounce receive` (from a real Postfix relay's pipe(8), on standard input,
or from a Maildir), and the database, `history`, `status` and `suppress list` show what they did.

The relay for the loop with a real MTA is a private Postfix instance on loopback
(tests/postfix_instance.py); everywhere else bulkmaild sends to the scripted SMTP server
(tests/smtp_server.py) and the reports are built here, to RFC 3464 and RFC 5965 and their
examples. Return paths are bulkmail's VERP addresses, computed here from the unsubscribe key the
way lib/crypto/verp_token.h describes, so that forged ones can be made next to real ones."""
import atexit
import base64
import email
import email.policy
import fcntl
import glob
import hashlib
import hmac
import json
import os
import pwd
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from daemon_test import BIN, SECRET, SRC, Env, wait_for
import postfix_instance
from postfix_instance import PostfixInstance

CTL = os.path.abspath(os.path.join(BIN, "bulkmailctl"))
_MAIL_USER_CTL = []


def mail_user_templates():
    """The source tree's templates, copied once where anyone may read them (see mail_user_ctl)."""
    path = os.path.join(os.path.dirname(mail_user_ctl()), "templates")
    if not os.path.isdir(path):
        shutil.copytree(os.path.join(SRC, "templates"), path)
        for root, dirs, files in os.walk(path):
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
    return path


def mail_user_ctl():
    """bulkmailctl where the user an MTA runs it as (nobody) may run it: the build folder may lie
    under a directory only its owner can enter (a fresh clone in a `mktemp -d` folder is 0700), so
    a copy, made once, in a folder anyone may enter."""
    if not _MAIL_USER_CTL:
        d = tempfile.mkdtemp(prefix="bulkmail-ctl-")
        os.chmod(d, 0o755)
        atexit.register(shutil.rmtree, d, True)
        path = os.path.join(d, "bulkmailctl")
        shutil.copy(CTL, path)
        os.chmod(path, 0o755)
        _MAIL_USER_CTL.append(path)
    return _MAIL_USER_CTL[0]
BOUNCES = "bounces.example.test"
FBL = "fbl@" + BOUNCES
UNSUBSCRIBE_URL = "https://mail.example.com/unsubscribe/"

# sysexits(3), as `bounce receive` answers the MTA.
EX_OK, EX_DATAERR, EX_TEMPFAIL = 0, 65, 75

B32 = "abcdefghijklmnopqrstuvwxyz234567"


def verp_local_part(message_id):
    """The return path's local part bulkmail gives message `message_id` (crypto/verp_token.h):
    "b-" + base32(id without leading zero bytes | first 10 bytes of HMAC-SHA256(key,
    "bulkmail-verp\\0" | id as 8 bytes)), lower case, no padding; the key is the unsubscribe
    secret's first line."""
    be = message_id.to_bytes(8, "big")
    mac = hmac.new(SECRET.encode(), b"bulkmail-verp\0" + be, hashlib.sha256).digest()[:10]
    return "b-" + base64.b32encode(be.lstrip(b"\0") + mac).decode().rstrip("=").lower()


def verp(message_id):
    return verp_local_part(message_id) + "@" + BOUNCES


def altered(local_part, rng):
    """The token with one character after "b-" replaced by another of the alphabet (not merely
    another case of it: bulkmail reads tokens in any case)."""
    i = rng.randrange(2, len(local_part))
    c = rng.choice([x for x in B32 if x != local_part[i]])
    return local_part[:i] + c + local_part[i + 1:]


def header_block(raw):
    """The header block of a message as bytes, LF line ends, without the blank line."""
    text = raw.replace(b"\r\n", b"\n")
    return text.split(b"\n\n", 1)[0] + b"\n"


def dsn(final_recipient, *, status="5.1.1", action="failed",
        diagnostic="smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown",
        delivered_to=None, returned=b"", mta="mx.example.net", tag=""):
    """A DSN (RFC 3464) in the shape Postfix and most MTAs write: multipart/report;
    report-type=delivery-status, a human part, a message/delivery-status part, and the returned
    headers as text/rfc822-headers. `delivered_to` is what a Maildir's MDA records as the
    envelope recipient; `tag` makes the bytes unique."""
    tag = tag or "%d.%d" % (time.time_ns(), random.getrandbits(32))
    head = "Delivered-To: %s\n" % delivered_to if delivered_to else ""
    text = (
        head +
        "Return-Path: <>\n"
        "From: MAILER-DAEMON@%(mta)s (Mail Delivery System)\n"
        "To: %(to)s\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Date: Sun, 29 Nov 2026 10:00:00 +0000\n"
        "Message-ID: <dsn.%(tag)s@%(mta)s>\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        "\tboundary=\"dsn-%(tag)s\"\n"
        "\n"
        "This is a MIME-encapsulated message.\n"
        "\n"
        "--dsn-%(tag)s\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n"
        "\n"
        "--dsn-%(tag)s\n"
        "Content-Type: message/delivery-status\n"
        "\n"
        "Reporting-MTA: dns; %(mta)s\n"
        "X-Queue-ID: %(tag)s\n"
        "Arrival-Date: Sun, 29 Nov 2026 09:59:58 +0000\n"
        "\n"
        "Final-Recipient: rfc822; %(rcpt)s\n"
        "Original-Recipient: rfc822; %(rcpt)s\n"
        "Action: %(action)s\n"
        "Status: %(status)s\n"
        "Diagnostic-Code: %(diagnostic)s\n"
        "\n"
        "--dsn-%(tag)s\n"
        "Content-Type: text/rfc822-headers\n"
        "\n"
    ) % {"mta": mta, "to": delivered_to or "postmaster@" + BOUNCES, "tag": tag,
         "rcpt": final_recipient, "action": action, "status": status,
         "diagnostic": diagnostic.format(rcpt=final_recipient)}
    return text.encode() + returned + ("\n--dsn-%s--\n" % tag).encode()


def returned_headers(message_id, to, *, return_path=None, list_unsubscribe=None):
    """The headers of a message as a DSN returns them."""
    lines = []
    if return_path:
        lines.append("Return-Path: <%s>" % return_path)
    lines += ["From: Example Telecom <updates@mail.example.com>", "To: %s" % to,
              "Subject: Your plan is changing", "Date: Sun, 29 Nov 2026 09:59:00 +0000",
              "Message-ID: %s" % message_id]
    if list_unsubscribe:
        lines += ["List-Unsubscribe: <%s>" % list_unsubscribe,
                  "List-Id: Updates about your services <customer-update.mail.example.com>"]
    return ("\n".join(lines) + "\n").encode()


def arf(feedback_type, original, *, rcpt_to=None, headers_only=False, tag=""):
    """A feedback report built to RFC 5965 and its example (section B.1): multipart/report;
    report-type=feedback-report with a human part, the message/feedback-report part, and the
    original as message/rfc822, or only its header block as text/rfc822-headers. `original` is
    the message as the recipient's provider received it; `rcpt_to` its Original-Rcpt-To (a real
    address, a redacted one, or None to leave it out)."""
    tag = tag or "%d.%d" % (time.time_ns(), random.getrandbits(32))
    original = original.replace(b"\r\n", b"\n")
    if headers_only:
        third = b"Content-Type: text/rfc822-headers\n\n" + header_block(original)
    else:
        third = b"Content-Type: message/rfc822\nContent-Disposition: inline\n\n" + original
    rcpt = "Original-Rcpt-To: <%s>\n" % rcpt_to if rcpt_to else ""
    text = (
        "From: <abusedesk@isp.example.net>\n"
        "Date: Sun, 29 Nov 2026 10:05:00 +0000\n"
        "Subject: FW: Your plan is changing\n"
        "To: <%(fbl)s>\n"
        "Message-ID: <arf.%(tag)s@isp.example.net>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=feedback-report;\n"
        "     boundary=\"part1_%(tag)s\"\n"
        "\n"
        "--part1_%(tag)s\n"
        "Content-Type: text/plain; charset=\"US-ASCII\"\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\n"
        "This is an email abuse report for an email message received from IP\n"
        "192.0.2.1 on Sun, 29 Nov 2026 09:59:00 +0000.  For more information\n"
        "about this format please see http://www.mipassoc.org/arf/.\n"
        "\n"
        "--part1_%(tag)s\n"
        "Content-Type: message/feedback-report\n"
        "\n"
        "Feedback-Type: %(type)s\n"
        "User-Agent: SomeGenerator/1.0\n"
        "Version: 1\n"
        "%(rcpt)s"
        "Arrival-Date: Sun, 29 Nov 2026 09:59:00 +0000\n"
        "Reporting-MTA: dns; mail.isp.example.net\n"
        "Source-IP: 192.0.2.1\n"
        "\n"
        "--part1_%(tag)s\n"
    ) % {"fbl": FBL, "tag": tag, "type": feedback_type, "rcpt": rcpt}
    return text.encode() + third + ("\n--part1_%s--\n" % tag).encode()


def auto_reply(to, in_reply_to):
    """An out-of-office notice (RFC 3834) sent back to a message's return path."""
    return ("Return-Path: <>\n"
            "From: Pat <pat@example.com>\n"
            "To: %s\n"
            "Subject: Out of office: Your plan is changing\n"
            "Date: Sun, 29 Nov 2026 10:00:00 +0000\n"
            "Message-ID: <ooo.%d@example.com>\n"
            "In-Reply-To: %s\n"
            "Auto-Submitted: auto-replied (vacation)\n"
            "X-Autoreply: yes\n"
            "Precedence: auto_reply\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "\n"
            "I am away until 5 December, with no access to my mail.\n"
            % (to, time.time_ns(), in_reply_to)).encode()


class BounceEnv(Env):
    """daemon_test's Env with a bounce domain, and helpers for the intake and what it changed."""

    def __init__(self, bounces="", **kw):
        super().__init__(extra="bounces:\n  domain: %s\n%s" % (BOUNCES, bounces), **kw)
        # The templates too where the MTA's user may read them (see mail_user_ctl): the intake
        # loads the whole config, templates folder included.
        with open(self.config) as f:
            config = f.read()
        with open(self.config, "w") as f:
            f.write(config.replace("templates: %s/templates" % SRC, "templates: " + mail_user_templates()))

    def stop_daemon(self, test):
        self.daemon.send_signal(signal.SIGTERM)
        test.assertEqual(self.daemon.wait(15), 0, "bulkmaild stops cleanly on SIGTERM")

    def send(self, test, addresses, campaign):
        """Queues a customer-update to each address in `campaign`, runs bulkmaild until all are
        sent and stops it. Returns {address: message id}."""
        if not self.server:
            self.start_server()
        ids = {a: self.enqueue(a, campaign=campaign) for a in addresses}
        self.start_daemon()
        wait_for(lambda: self.rows(
            "SELECT count(*) FROM messages WHERE campaign = ? AND state = 'sent'",
            campaign)[0][0] == len(addresses), 30, "the campaign's messages to be sent")
        self.stop_daemon(test)
        return ids

    def delivered(self, to):
        """The bytes the relay stored for the message to `to`."""
        for path in glob.glob(os.path.join(self.out, "*.eml")):
            with open(path, "rb") as f:
                raw = f.read()
            if email.message_from_bytes(raw, policy=email.policy.compat32)["To"] == to:
                return raw
        raise AssertionError("no message delivered to " + to)

    def receive(self, data, recipient=FBL, config=None):
        """`bounce receive` on standard input, as the MTA's pipe runs it."""
        args = [CTL, "--config", config or self.config, "bounce", "receive"]
        if recipient:
            args += ["--recipient", recipient]
        return subprocess.run(args, input=data, capture_output=True, timeout=60)

    def receive_ok(self, test, data, recipient=FBL):
        r = self.receive(data, recipient)
        test.assertEqual(r.returncode, EX_OK, r.stderr.decode())
        return r.stderr.decode()

    def counters(self):
        return dict(self.rows("SELECT name, count FROM feedback_counters"))

    def history(self, address):
        return json.loads(self.ctl("history", "--json", address).stdout)

    def suppress_list(self):
        return json.loads(self.ctl("suppress", "list", "--json").stdout)

    def campaign(self, name):
        return json.loads(self.ctl("status", "--campaign", name, "--json").stdout)["campaign"]

    def message(self, message_id):
        """(state, feedback, Message-ID header) of one message."""
        return self.rows("SELECT state, feedback, message_id FROM messages WHERE id = ?",
                         message_id)[0]

    def snapshot(self):
        """What a report may change: every message's state and feedback, the suppressions, the
        event log's length, the soft-bounce runs and the campaigns' pauses."""
        return {
            "messages": self.rows("SELECT id, state, feedback, updated_at FROM messages "
                                  "ORDER BY id"),
            "suppressions": self.rows("SELECT address, category, reason, source FROM suppressions "
                                      "ORDER BY address, category"),
            "events": self.rows("SELECT count(*), coalesce(max(id), 0) FROM events"),
            "soft_bounces": self.rows("SELECT * FROM soft_bounces ORDER BY address"),
            "campaigns": self.rows("SELECT name, paused_at, pause_reason FROM campaigns "
                                   "ORDER BY name"),
        }

    def maildir(self, name):
        path = os.path.join(self.dir, name)
        for sub in ("new", "cur", "tmp"):
            os.makedirs(os.path.join(path, sub))
        return path

    def ctl_as_mail_user(self, *args, unreadable=()):
        """bulkmailctl as an MTA or a timer runs it, as a user of its own, with each file in
        `unreadable` made unreadable to it: as root, as nobody, the environment's files handed to
        nobody first (again each time: a run as root may have made files of its own); otherwise
        as the user running the tests, the files' mode 000."""
        kw = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            for root, dirs, files in os.walk(self.dir):
                for name in [root] + [os.path.join(root, f) for f in dirs + files]:
                    os.lchown(name, nobody.pw_uid, nobody.pw_gid)
            for path in unreadable:
                os.chown(path, 0, 0)
                os.chmod(path, 0o600)
            kw = dict(user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[])
        else:
            for path in unreadable:
                os.chmod(path, 0)
        return subprocess.run([mail_user_ctl(), "--config", self.config, *args],
                              capture_output=True, timeout=120, **kw)


def event_types(history):
    return [e["type"] for e in history]


class BounceReceiveTest(unittest.TestCase):
    def setUp(self):
        self.env = None
        self.started = time.monotonic()

    def tearDown(self):
        if self.env:
            self.env.close()
        print("\n  %s: %.1f s" % (self._testMethodName, time.monotonic() - self.started),
              file=sys.stderr)

    # -- 1. the loop with a real MTA ------------------------------------------------------------

    @unittest.skipUnless(postfix_instance.available(), "needs root and Postfix (/usr/sbin/postfix)")
    def test_postfix_relay_bounces_come_back_through_the_pipe(self):
        # bulkmaild relays to a private Postfix on loopback. Postfix refuses @hard at once (5.1.1,
        # a failed DSN), keeps @soft deferred (4.2.2, a delayed DSN after 1 s) and takes @ok. Its
        # bounce(8) mails the DSNs to each message's VERP return path, which it hands to
        # `bulkmailctl bounce receive --recipient ${recipient}` through pipe(8), as nobody.
        e = self.env = BounceEnv()
        os.chmod(e.dir, 0o755)
        nobody = pwd.getpwnam("nobody")
        for root, dirs, files in os.walk(e.dir):
            for name in [root] + [os.path.join(root, f) for f in files]:
                os.chown(name, nobody.pw_uid, nobody.pw_gid)
        relay_dir = tempfile.mkdtemp(prefix="bulkmail-relay-")
        self.addCleanup(shutil.rmtree, relay_dir, True)
        os.chmod(relay_dir, 0o755)
        relay = PostfixInstance(
            os.path.join(relay_dir, "postfix"), bounce_domain=BOUNCES, port=e.port,
            pipe_argv=[mail_user_ctl(), "--config", e.config, "bounce", "receive",
                       "--recipient", "${recipient}"])
        relay.start()
        self.addCleanup(relay.stop)
        try:
            self.postfix_loop(e, relay)
        except BaseException:
            print(relay.log_text()[-6000:], file=sys.stderr)
            raise
        relay.stop()

    def postfix_loop(self, e, relay):
        hard, soft, ok = "pat@hard.example.test", "sam@soft.example.test", "lee@ok.example.test"
        ids = {a: e.enqueue(a, campaign="nov") for a in (hard, soft, ok)}
        e.start_daemon()
        wait_for(lambda: all(e.message(i)[0] in ("sent", "bounced") for i in ids.values()), 30,
                 "the three messages handed to the relay")
        # Postfix writes each DSN to the message's own return path.
        relay.wait_for_log(r"to=<%s>, relay=bouncepipe, .* status=sent" % verp(ids[hard]), 30)
        relay.wait_for_log(r"to=<%s>, relay=bouncepipe, .* status=sent" % verp(ids[soft]), 30)
        relay.wait_for_log(r"to=<%s>,.* status=sent " % ok.replace(".", r"\."), 30)
        e.stop_daemon(self)

        # The hard bounce: the message bounced, the address suppressed for all mail, and the
        # history says what Postfix said and who said it.
        self.assertEqual(e.message(ids[hard])[:2], ("bounced", "hard"))
        self.assertEqual([(s["email"], s["category"], s["reason"]) for s in e.suppress_list()],
                         [(hard, None, "hard-bounce")], "only the hard-bounced address")
        bounced = [ev for ev in e.history(hard) if ev["type"] == "hard-bounce"]
        self.assertEqual(len(bounced), 1, e.history(hard))
        self.assertEqual(bounced[0]["message"], ids[hard])
        self.assertEqual(bounced[0]["campaign"], "nov")
        self.assertIn("5.1.1", bounced[0]["detail"])
        self.assertIn("user unknown", bounced[0]["detail"])
        self.assertIn("relay.example.test", bounced[0]["detail"])  # the reporting MTA
        self.assertIn("hard-bounce", e.ctl("history", hard).stdout.decode())
        # How long after bulkmail recorded the message sent its bounce was taken in: a report
        # that came before would find the message still sending and change nothing.
        (margin,), = e.rows(
            "SELECT (SELECT at FROM events WHERE type = 'hard-bounce' AND message = ?1)"
            " - (SELECT at FROM events WHERE type = 'sent' AND message = ?1)", ids[hard])
        print("\n  the hard bounce was taken in %d ms after the message was recorded sent" % margin,
              file=sys.stderr)

        # The soft bounce: counted (run 1 of 3), the address not suppressed, the message sent.
        self.assertEqual(e.message(ids[soft])[:2], ("sent", "soft"))
        softs = [ev for ev in e.history(soft) if ev["type"] == "soft-bounce"]
        self.assertEqual(len(softs), 1, e.history(soft))
        self.assertIn("4.2.2", softs[0]["detail"])
        self.assertIn("mailbox full", softs[0]["detail"])
        self.assertIn("soft bounce 1 of 3", softs[0]["detail"])

        # The accepted one: sent, and nothing happened to it beyond that.
        self.assertEqual(e.message(ids[ok])[:2], ("sent", None))
        self.assertEqual(event_types(e.history(ok)), ["enqueued", "sent"])

        c = e.counters()
        self.assertEqual(c.get("report:bounce"), 1, c)
        self.assertEqual(c.get("report:delay"), 1, c)
        # A report that came before the message was recorded sent would have been lost.
        for wrong in ("not-sent", "unmatched", "forged", "mismatch"):
            self.assertNotIn(wrong, c)
        campaign = e.campaign("nov")
        self.assertEqual((campaign["sent"], campaign["bounced"], campaign["hard_bounces"]),
                         (2, 1, 1))

        # The soft message expires in Postfix's queue: its final DSN (Action: failed, still
        # 4.2.2) is the same message's soft bounce again, and the run stays at 1.
        queued = [m["queue_id"] for m in relay.queue() if m["sender"] == verp(ids[soft])]
        self.assertEqual(len(queued), 1, relay.queue())
        relay.expire(queued)
        relay.flush()
        wait_for(lambda: e.counters().get("report:bounce") == 2, 20, "the soft message's final DSN")
        softs = [ev for ev in e.history(soft) if ev["type"] == "soft-bounce"]
        self.assertEqual(len(softs), 2, softs)
        self.assertIn("soft bounce 1 of 3", softs[1]["detail"])
        self.assertEqual(e.message(ids[soft])[:2], ("sent", "soft"))
        self.assertEqual([s["email"] for s in e.suppress_list()], [hard])

    # -- 2. complaints ---------------------------------------------------------------------------

    def test_complaints_are_matched_by_message_id(self):
        e = self.env = BounceEnv()
        people = ["ann@example.com", "bob@example.com", "cat@example.com", "dan@example.com",
                  "eve@example.com"]
        ids = e.send(self, people, "dec")
        self.assertEqual(e.campaign("dec")["complaints"], 0)

        # An abuse report naming the recipient, the whole original returned: suppressed for all
        # mail, the message complained, the campaign's complaint rate moves.
        ann = e.delivered("ann@example.com")
        out = e.receive_ok(self, arf("abuse", ann, rcpt_to="ann@example.com"))
        self.assertIn("Message-ID, message %d" % ids["ann@example.com"], out)
        self.assertEqual(e.message(ids["ann@example.com"])[:2], ("complained", "complaint"))
        self.assertEqual([(s["email"], s["category"], s["reason"]) for s in e.suppress_list()],
                         [("ann@example.com", None, "complaint")])
        c = e.campaign("dec")
        self.assertEqual((c["complaints"], c["complained"], c["answered"]), (1, 1, 5))
        self.assertAlmostEqual(c["complaint_rate"], 1 / 5)
        complaint = [ev for ev in e.history("ann@example.com") if ev["type"] == "complaint"]
        self.assertEqual(len(complaint), 1)
        self.assertIn("abuse", complaint[0]["detail"])

        # Redacted recipients (RFC 6590), only the original's headers returned: its Message-ID
        # still names the message.
        for who, redacted in (("bob@example.com", "redacted@example.com"),
                              ("cat@example.com", "3f8a9c0d1e2b4a6c8e0f1a2b3c4d5e6f@example.com")):
            out = e.receive_ok(self, arf("abuse", e.delivered(who), rcpt_to=redacted,
                                         headers_only=True))
            self.assertIn("Message-ID, message %d" % ids[who], out)
            self.assertEqual(e.message(ids[who])[0], "complained", who)
        self.assertEqual(sorted((s["email"], s["reason"]) for s in e.suppress_list()),
                         [("ann@example.com", "complaint"), ("bob@example.com", "complaint"),
                          ("cat@example.com", "complaint")])
        self.assertEqual(e.campaign("dec")["complaints"], 3)

        # not-spam: recorded in the history, nothing more.
        before = e.snapshot()
        e.receive_ok(self, arf("not-spam", e.delivered("dan@example.com"),
                               rcpt_to="dan@example.com"))
        self.assertEqual(e.message(ids["dan@example.com"])[0], "sent")
        notes = [ev for ev in e.history("dan@example.com") if ev["type"] == "complaint-note"]
        self.assertEqual(len(notes), 1)
        self.assertIn("not-spam", notes[0]["detail"])
        after = e.snapshot()
        self.assertEqual(after["suppressions"], before["suppressions"])
        self.assertEqual(after["messages"], before["messages"])
        self.assertEqual(e.campaign("dec")["complaints"], 3)

        # An abuse report whose Original-Rcpt-To names someone other than the recipient of the
        # message its Message-ID names: an error, not an action.
        before, counted = e.snapshot(), e.counters()
        out = e.receive_ok(self, arf("abuse", e.delivered("eve@example.com"),
                                     rcpt_to="mallory@example.com"))
        self.assertEqual(e.snapshot(), before)
        self.assertEqual(e.message(ids["eve@example.com"])[0], "sent")
        self.assertEqual(e.counters().get("mismatch", 0), counted.get("mismatch", 0) + 1)
        self.assertNotIn("complaint", event_types(e.history("eve@example.com")))
        self.assertEqual(e.campaign("dec")["complaints"], 3)

    # -- 3. forgeries ----------------------------------------------------------------------------

    def test_ten_thousand_forged_reports_change_nothing(self):
        e = self.env = BounceEnv()
        people = ["p%d@example.com" % i for i in range(6)]
        ids = e.send(self, people, "forged")
        e.ctl("suppress", "add", "kept@example.com", "--reason", "manual")
        real = {ids[a]: a for a in people}
        message_ids = {i: e.message(i)[2] for i in real}
        unsubscribe = [email.message_from_bytes(e.delivered(a))["List-Unsubscribe"]
                       .split(",")[0].strip().strip("<>")[len(UNSUBSCRIBE_URL):] for a in people]
        victims = people + ["kept@example.com", "ceo@example.com"]
        rng = random.Random(15)
        box = e.maildir("bounces")
        expected = {"forged": 0, "unmatched": 0, "mismatch": 0}
        files = []

        def add(kind, data):
            expected[kind] += 1
            files.append(data)

        for n in range(10_000):
            victim = rng.choice(victims)
            tag = "f%05d" % n
            if n < 3000:
                # A random token of a plausible length. One in ten returns the headers of a
                # message bulkmail did send, to its recipient: a forged token still wins.
                token = "b-" + "".join(rng.choice(B32) for _ in range(rng.choice([16, 18, 21, 29])))
                returned = b""
                if n % 10 == 0:
                    mid = rng.choice(list(real))
                    victim, returned = real[mid], returned_headers(message_ids[mid], real[mid])
                add("forged", dsn(victim, delivered_to=token + "@" + BOUNCES, tag=tag,
                                  returned=returned))
            elif n < 5500:
                # A real token with one character altered: in the envelope recipient, or only in
                # the returned message's Return-Path.
                token = altered(verp_local_part(rng.choice(list(real))), rng) + "@" + BOUNCES
                if n % 2:
                    add("forged", dsn(victim, delivered_to=token, tag=tag))
                else:
                    add("forged", dsn(victim, delivered_to=FBL, tag=tag, returned=returned_headers(
                        "<%s@mail.example.com>" % tag, victim, return_path=token)))
            elif n < 5550:
                # A forged unsubscribe token in the returned List-Unsubscribe, the Message-ID
                # one bulkmail never sent: half random, half a real token altered.
                token = ("".join(rng.choice("ABCDEFabcdef0123456789-_") for _ in range(70))
                         if n % 2 else altered("b-" + rng.choice(unsubscribe), rng)[2:])
                add("forged", dsn(victim, tag=tag, returned=returned_headers(
                    "<%s@mail.example.com>" % tag, victim,
                    list_unsubscribe=UNSUBSCRIBE_URL + token)))
            elif n < 7550:
                # The token of a real message, but the DSN names another recipient.
                mid = rng.choice(list(real))
                other = rng.choice([v for v in victims if v != real[mid]])
                add("mismatch", dsn(other, delivered_to=verp(mid), tag=tag))
            else:
                # A Message-ID bulkmail never sent, in the shape of its own.
                fake = "<%d.%024x@mail.example.com>" % (rng.randrange(1, 10**6),
                                                        rng.getrandbits(96))
                add("unmatched", dsn(victim, tag=tag,
                                     returned=returned_headers(fake, victim)))
        for n, data in enumerate(files):
            with open(os.path.join(box, "new", "1764400000.M%05dP1.mx.example.net" % n), "wb") as f:
                f.write(data)
        self.assertEqual(len(set(files)), 10_000, "every report is different bytes")

        before, counted, listed = e.snapshot(), e.counters(), e.suppress_list()
        started = time.monotonic()
        r = e.ctl("bounce", "receive", "--maildir", box)
        took = time.monotonic() - started
        print("\n  10,000 forged reports taken in from a Maildir in %.1f s (%.0f a second)"
              % (took, 10_000 / took), file=sys.stderr)
        self.assertIn("10000 reports taken in", r.stdout.decode())
        self.assertIn("(0 taken in before), 0 not mail", r.stdout.decode())

        self.assertEqual(e.suppress_list(), listed)
        self.assertEqual(e.snapshot(), before)
        for i, address in real.items():
            self.assertEqual(e.message(i)[:2], ("sent", None), address)
        c = e.counters()
        delta = {k: c.get(k, 0) - counted.get(k, 0) for k in expected}
        self.assertEqual(delta, expected)
        self.assertEqual(sum(delta.values()), 10_000)
        self.assertEqual(c.get("report:bounce", 0) - counted.get("report:bounce", 0), 10_000)
        self.assertEqual(os.listdir(os.path.join(box, "new")), [])
        self.assertEqual(len(os.listdir(os.path.join(box, "cur"))), 10_000)

    # -- 4. the automatic pause ------------------------------------------------------------------

    def test_automatic_pause_trips_at_exactly_the_configured_rate(self):
        e = self.env = BounceEnv(bounces="  min_sample: 20\n  pause_complaint_rate: 10%\n")
        people = ["u%02d@example.com" % i for i in range(20)]
        ids = e.send(self, people, "jan")
        # Messages queued after the 20 went out: they wait for the next run.
        waiting = [e.enqueue("w%d@example.com" % i, campaign="jan") for i in range(3)]

        # 1 complaint in 20 answered is 5%: below 10%, no pause.
        e.receive_ok(self, arf("abuse", e.delivered(people[0]), rcpt_to=people[0]))
        c = e.campaign("jan")
        self.assertEqual((c["complaints"], c["answered"], c["paused"]), (1, 20, False))
        self.assertNotIn("paused", e.ctl("status", "--campaign", "jan").stdout.decode())

        # 2 in 20 is 10%: the campaign pauses itself, and says why.
        out = e.receive_ok(self, arf("abuse", e.delivered(people[1]), rcpt_to=people[1]))
        self.assertIn("paused itself", out)
        c = e.campaign("jan")
        self.assertEqual((c["complaints"], c["paused"]), (2, True))
        self.assertIn("complaint rate 10.00% (2 of 20 answered)", c["pause_reason"])
        self.assertIn("bounces.pause_complaint_rate 10%", c["pause_reason"])
        text = e.ctl("status", "--campaign", "jan").stdout.decode()
        self.assertIn("automatically: complaint rate 10.00% (2 of 20 answered)", text)
        self.assertEqual(e.counters().get("auto-pause"), 1)

        # Its queued messages stay queued while bulkmaild runs.
        e.start_daemon()
        time.sleep(3)
        self.assertEqual([e.message(i)[0] for i in waiting], ["queued"] * 3)
        self.assertEqual(e.campaign("jan")["sent"], 18)
        # A person resumes it, and they go.
        self.assertIn("resumed", e.ctl("resume", "--campaign", "jan").stdout.decode())
        wait_for(lambda: all(e.message(i)[0] == "sent" for i in waiting), 20,
                 "the released messages to be sent")
        e.stop_daemon(self)
        self.assertFalse(e.campaign("jan")["paused"])
        self.assertEqual(e.message(ids[people[1]])[0], "complained")

    # -- 5. crash safety of --maildir ------------------------------------------------------------

    def test_maildir_killed_mid_folder_counts_every_report_once(self):
        e = self.env = BounceEnv()
        e.import_many(50, campaign="feb", prefix="m")
        e.start_server()
        e.start_daemon()
        wait_for(lambda: e.rows("SELECT count(*) FROM messages WHERE state = 'sent'")[0][0] == 50,
                 30, "the 50 messages to be sent")
        e.stop_daemon(self)
        sent = e.rows("SELECT id, recipient FROM messages ORDER BY id")
        total = 3000
        box = e.maildir("bounces")
        matched = {}  # file index -> (message id, recipient, event type)
        slots = random.Random(5).sample(range(total), len(sent))
        for slot, (mid, rcpt) in zip(slots, sent):
            matched[slot] = (mid, rcpt, "hard-bounce" if mid % 2 else "soft-bounce")
        for n in range(total):
            if n in matched:
                mid, rcpt, kind = matched[n]
                data = (dsn(rcpt, delivered_to=verp(mid), tag="c%05d" % n) if kind == "hard-bounce"
                        else dsn(rcpt, delivered_to=verp(mid), status="5.2.2", tag="c%05d" % n,
                                 diagnostic="smtp; 552 5.2.2 <{rcpt}>: Mailbox full"))
            else:
                data = dsn("gone%d@example.org" % n, tag="c%05d" % n, returned=returned_headers(
                    "<never.%d.%x@mail.example.com>" % (n, random.getrandbits(64)),
                    "gone%d@example.org" % n))
            with open(os.path.join(box, "new", "1764400000.M%05dP2.mx.example.net" % n), "wb") as f:
                f.write(data)
        new, cur = os.path.join(box, "new"), os.path.join(box, "cur")

        # Killed once some, not all, of the folder is done: at a point chosen at random each run
        # (printed), in the first half.
        seed = time.time_ns()
        at = random.Random(seed).randrange(1, total // 2)
        argv = [CTL, "--config", e.config, "bounce", "receive", "--maildir", box, "--batch", "50"]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(os.listdir(cur)) < at and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        # Then aimed at the window between a batch's commit and its moves: killed as soon as
        # more reports are committed than files moved (or, missing it, 300 files later).
        db = sqlite3.connect(os.path.join(e.dir, "queue.db"), timeout=10)
        while p.poll() is None and time.monotonic() < deadline:
            committed = db.execute("SELECT count(*) FROM received_reports").fetchone()[0]
            moved = len(os.listdir(cur))
            if committed > moved or moved >= at + 300:
                break
        p.kill()
        db.close()
        p.wait()
        p.stdout.close()
        moved = len(os.listdir(cur))
        committed = e.rows("SELECT count(*) FROM received_reports")[0][0]
        print("\n  killed (seed %d) with %d of %d moved to cur/, %d committed"
              % (seed, moved, total, committed), file=sys.stderr)
        self.assertGreater(moved, 0)
        self.assertLess(moved, total, "the run finished before it was killed: nothing tested")
        self.assertEqual(moved + len(os.listdir(new)), total, "no report lost or left in between")
        self.assertGreaterEqual(committed, moved)

        r = subprocess.run(argv, capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        again = committed - moved  # committed by the killed run, but not yet moved
        self.assertIn("%d reports taken in from %s (%d taken in before)"
                      % (total - moved, box, again), r.stdout.decode())
        print("  second run: %s" % r.stdout.decode().strip(), file=sys.stderr)
        self.assertEqual(os.listdir(new), [])
        self.assertEqual(len(os.listdir(cur)), total)
        c = e.counters()
        self.assertEqual(c.get("report:bounce", 0) + c.get("report:delay", 0), total, c)
        self.assertEqual(c.get("unmatched", 0), total - len(matched))
        self.assertEqual(c.get("duplicate", 0), again)
        self.assertEqual(e.rows("SELECT count(*) FROM received_reports")[0][0], total)
        for mid, rcpt, kind in matched.values():
            reports = [ev for ev in e.history(rcpt) if ev["type"] in ("hard-bounce", "soft-bounce")]
            self.assertEqual([(ev["type"], ev["message"]) for ev in reports], [(kind, mid)], rcpt)
        states = dict(e.rows("SELECT state, count(*) FROM messages GROUP BY state"))
        self.assertEqual(states, {"bounced": 25, "sent": 25})

    def test_maildir_skips_what_it_cannot_read_or_is_not_a_regular_file(self):
        # A file the run may not read, a symbolic link (to a report that would bounce someone:
        # links are never followed), a folder and a FIFO in new/: each is named in a warning and
        # left where it is, the rest of the folder is taken in, and the run exits 75 so that the
        # timer that runs it shows the failure. A name with control characters in it is logged
        # with '?' in their place.
        e = self.env = BounceEnv()
        ids = e.send(self, ["ann@example.com", "bob@example.com"], "may")
        ann, bob = ids["ann@example.com"], ids["bob@example.com"]
        box = e.maildir("bounces")
        new, cur = os.path.join(box, "new"), os.path.join(box, "cur")

        def put(name, data):
            path = os.path.join(new, name)
            with open(path, "wb") as f:
                f.write(data)
            return path

        taken = "1764400001.M1P1.mx.example.net"
        put(taken, dsn("ann@example.com", delivered_to=verp(ann)))
        unreadable = put("1764400002.M2P1.mx.example.net",
                         dsn("bob@example.com", delivered_to=verp(bob)))
        outside = os.path.join(e.dir, "outside.eml")
        with open(outside, "wb") as f:
            f.write(dsn("bob@example.com", delivered_to=verp(bob)))
        link = os.path.join(new, "1764400003.M3P1.mx.example.net")
        os.symlink(outside, link)
        folder = os.path.join(new, "1764400004.M4P1.mx.example.net")
        os.mkdir(folder)
        fifo = os.path.join(new, "1764400005.M5P1.mx.example.net")
        os.mkfifo(fifo)
        evil = "1764400006.M6P1.mx\x1b[31m\nforged: line"
        put(evil, b"\x00\x01\x02\xff" * 100)

        r = e.ctl_as_mail_user("bounce", "receive", "--maildir", box, unreadable=[unreadable])
        out, err = r.stdout.decode(), r.stderr.decode(errors="replace")
        self.assertEqual(r.returncode, EX_TEMPFAIL, err)
        self.assertIn("1 report taken in from %s (0 taken in before), 1 not mail, 4 skipped\n"
                      % box, out)
        self.assertIn("4 files left in %s/new for a later run" % box, err)
        self.assertIn("1764400002.M2P1.mx.example.net: cannot read", err)
        for path in (link, folder, fifo):
            self.assertIn("new/%s: not a regular file" % os.path.basename(path), err)
        self.assertNotIn(b"\x1b", r.stderr)
        self.assertIn("mx?[31m forged: line", err)
        self.assertFalse([line for line in err.splitlines() if line.startswith("forged")], err)

        self.assertEqual(sorted(os.listdir(new)), sorted(os.path.basename(p) for p in
                                                         (unreadable, link, folder, fifo)))
        self.assertEqual(sorted(os.listdir(cur)), sorted([taken + ":2,S", evil + ":2,S"]))
        self.assertTrue(os.path.islink(link))
        self.assertTrue(os.path.isfile(outside))
        self.assertEqual(e.message(ann)[:2], ("bounced", "hard"))
        self.assertEqual(e.message(bob)[:2], ("sent", None))
        self.assertEqual([s["email"] for s in e.suppress_list()], ["ann@example.com"])

        # The operator repairs new/: the next run takes the rest in, and exits 0.
        os.chmod(unreadable, 0o644)
        os.unlink(link)
        os.rmdir(folder)
        os.unlink(fifo)
        r = e.ctl_as_mail_user("bounce", "receive", "--maildir", box)
        self.assertEqual(r.returncode, EX_OK, r.stderr.decode())
        self.assertIn("1 report taken in from %s (0 taken in before), 0 not mail\n" % box,
                      r.stdout.decode())
        self.assertEqual(os.listdir(new), [])
        self.assertEqual(e.message(bob)[:2], ("bounced", "hard"))

    def test_two_maildir_runs_at_once_take_turns(self):
        # A run holds an exclusive flock(2) on the Maildir folder itself: a second one (a timer's
        # beside an operator's) says that it waits, and waits, rather than taking the same files
        # in beside the first.
        e = self.env = BounceEnv()
        box = e.maildir("bounces")
        new = os.path.join(box, "new")
        with open(os.path.join(new, "1764400001.M1P1.mx.example.net"), "wb") as f:
            f.write(dsn("gone@example.org", returned=returned_headers(
                "<never.1@mail.example.com>", "gone@example.org")))
        lock = os.open(box, os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, lock)
        fcntl.flock(lock, fcntl.LOCK_EX)  # as the first run holds it
        p = subprocess.Popen([CTL, "--config", e.config, "bounce", "receive", "--maildir", box],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            time.sleep(1.5)
            self.assertIsNone(p.poll(), "the second run waits for the first to finish")
            self.assertEqual(len(os.listdir(new)), 1)
            fcntl.flock(lock, fcntl.LOCK_UN)
            out, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.communicate()
        self.assertEqual(p.returncode, EX_OK, err.decode())
        self.assertIn("another bounce receive is taking %s in: waiting for it to finish" % box,
                      err.decode())
        self.assertIn("1 report taken in from %s" % box, out.decode())
        self.assertEqual(os.listdir(new), [])

    def test_a_maildir_whose_new_and_cur_are_on_different_file_systems_is_refused(self):
        # rename(2) cannot move a file from one file system to another: a report taken in could
        # then never leave new/. The run refuses before it takes anything in.
        if not os.path.isdir("/dev/shm"):
            self.skipTest("needs /dev/shm, a second file system")
        elsewhere = tempfile.mkdtemp(prefix="bulkmail-cur-", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, elsewhere, True)
        if os.stat(elsewhere).st_dev == os.stat(tempfile.gettempdir()).st_dev:
            self.skipTest("/dev/shm is on the same file system as %s" % tempfile.gettempdir())
        e = self.env = BounceEnv()
        box = os.path.join(e.dir, "split")
        for sub in ("new", "tmp"):
            os.makedirs(os.path.join(box, sub))
        os.symlink(elsewhere, os.path.join(box, "cur"))
        new = os.path.join(box, "new")
        with open(os.path.join(new, "1764400001.M1P1.mx.example.net"), "wb") as f:
            f.write(dsn("gone@example.org", returned=returned_headers(
                "<never.1@mail.example.com>", "gone@example.org")))
        counted = e.counters()
        r = e.ctl("bounce", "receive", "--maildir", box, check=False)
        self.assertEqual(r.returncode, EX_TEMPFAIL, r.stderr.decode())
        self.assertIn("%s: new/ and cur/ are on different file systems" % box, r.stderr.decode())
        self.assertEqual(os.listdir(new), ["1764400001.M1P1.mx.example.net"])
        self.assertEqual(os.listdir(elsewhere), [])
        self.assertEqual(e.rows("SELECT count(*) FROM received_reports")[0][0], 0)
        self.assertEqual(e.counters(), counted)

    # -- 6. what the MTA is told -----------------------------------------------------------------

    def test_exit_statuses_tell_the_mta_what_to_do(self):
        e = self.env = BounceEnv()
        ids = e.send(self, ["ann@example.com"], "mar")
        mid = ids["ann@example.com"]
        before = e.snapshot()

        # Not mail at all: 65, and nothing changed.
        for data in (b"", b"\n\n  \n", bytes(random.Random(1).getrandbits(8) for _ in range(4096)),
                     b"\x00\x01\x02\xff" * 100):
            r = e.receive(data, recipient=verp(mid))
            self.assertEqual(r.returncode, EX_DATAERR, (data[:20], r.stderr.decode()))
        self.assertEqual(e.snapshot(), before)

        # An out-of-office reply to the message's own return path: taken (0), ignored.
        counted = e.counters()
        r = e.receive(auto_reply(verp(mid), e.message(mid)[2]), recipient=verp(mid))
        self.assertEqual(r.returncode, EX_OK, r.stderr.decode())
        self.assertEqual(e.snapshot(), before)
        self.assertEqual(e.counters().get("report:auto-reply", 0),
                         counted.get("report:auto-reply", 0) + 1)
        self.assertEqual(event_types(e.history("ann@example.com")), ["enqueued", "sent"])

        # The database or the config is not there: 75, so the MTA keeps the report and retries.
        report = dsn("ann@example.com", delivered_to=verp(mid))
        with open(e.config) as f:
            config = f.read()
        missing_db = os.path.join(e.dir, "missing-db.yaml")
        with open(missing_db, "w") as f:
            f.write(config.replace("database: queue.db", "database: no-such-dir/queue.db"))
        missing_file = os.path.join(e.dir, "missing-file.yaml")
        with open(missing_file, "w") as f:
            f.write(config.replace("database: queue.db", "database: not-created-yet.db"))
        not_a_db = os.path.join(e.dir, "not-a-db.yaml")
        with open(not_a_db, "w") as f:
            f.write(config.replace("database: queue.db", "database: unsubscribe.key"))
        for cfg in (missing_db, missing_file, not_a_db, os.path.join(e.dir, "no-such-config.yaml")):
            r = e.receive(report, recipient=verp(mid), config=cfg)
            self.assertEqual(r.returncode, EX_TEMPFAIL, (cfg, r.stderr.decode()))
            self.assertIn("kept for a later try", r.stderr.decode())
        self.assertFalse(os.path.exists(os.path.join(e.dir, "not-created-yet.db")))
        # A database the intake's user may not open (an MTA runs it as nobody, say).
        if os.geteuid() == 0:
            os.chmod(e.dir, 0o755)
            db = os.path.join(e.dir, "queue.db")
            os.chmod(db, 0o600)
            r = subprocess.run([mail_user_ctl(), "--config", e.config, "bounce", "receive",
                                "--recipient", verp(mid)], input=report, capture_output=True,
                               timeout=60, user=pwd.getpwnam("nobody").pw_uid)
            os.chmod(db, 0o644)
            self.assertEqual(r.returncode, EX_TEMPFAIL, r.stderr.decode())
        self.assertEqual(e.snapshot(), before)

        # The same report twice: taken in once, then "taken in before", both 0.
        out = e.receive_ok(self, report, recipient=verp(mid))
        self.assertIn("suppressed", out)
        self.assertEqual(e.message(mid)[0], "bounced")
        once = e.snapshot()
        out = e.receive_ok(self, report, recipient=verp(mid))
        self.assertIn("taken in before", out)
        self.assertEqual(e.snapshot(), once)
        self.assertEqual(event_types(e.history("ann@example.com")).count("hard-bounce"), 1)
        self.assertEqual(e.counters().get("duplicate"), 1)

    def test_what_could_not_be_read_is_tried_again_not_bounced(self):
        # Postfix's pipe(8) returns a report to its sender on a status of 1 or 2, and a bounce of a
        # bounce goes to no one: a typo in master.cf, a report file bulkmail may not read, or
        # standard input failing must keep the report queued (75). 65 stays for input that is not
        # mail.
        e = self.env = BounceEnv()
        report = dsn("gone@example.org", returned=returned_headers(
            "<never.1@mail.example.com>", "gone@example.org"))
        box = e.maildir("bounces")
        for args in (["bounce", "receive", "--bogus"],
                     ["bounce", "receive", "--recipient"],
                     ["bounce", "receive", "--batch", "5"],
                     ["bounce", "receive", "--maildir", box, "--batch", "0"],
                     ["bounce", "receive", "--maildir", box, "report.eml"],
                     ["bounce", "receive", "--maildir", box, "--recipient", FBL],
                     ["bounce", "receive", "one.eml", "two.eml"]):
            r = subprocess.run([CTL, "--config", e.config, *args], input=report,
                               capture_output=True, timeout=60)
            self.assertEqual(r.returncode, EX_TEMPFAIL, (args, r.stderr.decode()))
            self.assertIn("kept for a later try", r.stderr.decode(), args)
        # Every other command's usage errors stay 2.
        for args in (["bounce", "parse"], ["bounce"], ["status", "--bogus"], ["bogus"],
                     ["bounce", "bogus"]):
            r = e.ctl(*args, check=False)
            self.assertEqual(r.returncode, 2, (args, r.stderr.decode()))

        # A report file that cannot be read: missing, a folder; DIR not a Maildir.
        missing = os.path.join(e.dir, "no-such-report.eml")
        for args, says in ((["bounce", "receive", missing], missing + ": cannot read"),
                           (["bounce", "receive", e.dir], e.dir + ": is a folder"),
                           (["bounce", "receive", "--maildir", missing], "not a Maildir")):
            r = e.ctl(*args, check=False)
            self.assertEqual(r.returncode, EX_TEMPFAIL, (args, r.stderr.decode()))
            self.assertIn(says, r.stderr.decode())
        # Standard input that fails to read (here a folder): 75, not an empty report (65).
        fd = os.open(e.dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            r = subprocess.run([CTL, "--config", e.config, "bounce", "receive", "--recipient",
                                FBL], stdin=fd, capture_output=True, timeout=60)
        finally:
            os.close(fd)
        self.assertEqual(r.returncode, EX_TEMPFAIL, r.stderr.decode())
        self.assertIn("cannot read standard input", r.stderr.decode())
        self.assertEqual(e.rows("SELECT count(*) FROM received_reports")[0][0], 0)

        # The same report as a FILE is taken in; a FILE that is not mail is 65.
        path = os.path.join(e.dir, "report.eml")
        with open(path, "wb") as f:
            f.write(report)
        r = e.ctl("bounce", "receive", "--recipient", FBL, path, check=False)
        self.assertEqual(r.returncode, EX_OK, r.stderr.decode())
        self.assertEqual(e.rows("SELECT count(*) FROM received_reports")[0][0], 1)
        with open(path, "wb") as f:
            f.write(b"\x00\x01\x02\xff" * 100)
        r = e.ctl("bounce", "receive", "--recipient", FBL, path, check=False)
        self.assertEqual(r.returncode, EX_DATAERR, r.stderr.decode())

    def test_a_report_about_a_message_still_being_sent_is_kept_for_a_later_try(self):
        # A relay close by bounces within milliseconds of its 250: the Postfix relay above does
        # it some 20-60 ms after bulkmaild records the message sent, and a busy or restarting
        # bulkmaild records it later still. A report that names a message bulkmail is still
        # sending must not be spent on it: the MTA keeps it (75) and brings it again, and then
        # it is taken in. Here the relay takes 3 s to answer the end of the message.
        e = self.env = BounceEnv()
        e.start_server("--data-delay", "3000")
        mid = e.enqueue("ann@example.com", campaign="apr")
        e.start_daemon()
        wait_for(lambda: e.message(mid)[0] == "sending", 10, "the message being sent")
        report = dsn("ann@example.com", delivered_to=verp(mid))
        before = e.snapshot()
        r = e.receive(report, recipient=verp(mid))
        self.assertEqual(r.returncode, EX_TEMPFAIL, r.stderr.decode())
        self.assertIn("names message %d, which is still being sent: kept for a later try" % mid,
                      r.stderr.decode())
        self.assertEqual(e.snapshot(), before)
        wait_for(lambda: e.message(mid)[0] == "sent", 10, "the message recorded sent")
        out = e.receive_ok(self, report, recipient=verp(mid))  # the MTA's next try
        self.assertNotIn("taken in before", out)
        self.assertEqual(e.message(mid)[:2], ("bounced", "hard"))
        self.assertEqual([(s["email"], s["reason"]) for s in e.suppress_list()],
                         [("ann@example.com", "hard-bounce")])
        e.stop_daemon(self)


    def test_a_maildir_leaves_a_report_about_a_message_still_being_sent_in_new(self):
        # As from the pipe, from a Maildir: the report about the message bulkmail is still sending
        # stays in new/, the others are taken in, and the run exits 75 and says how many it kept.
        # The next run, once the message is recorded sent, takes it in.
        e = self.env = BounceEnv()
        e.start_server("--data-delay", "3000")
        mid = e.enqueue("ann@example.com", campaign="jun")
        box = e.maildir("bounces")
        new, cur = os.path.join(box, "new"), os.path.join(box, "cur")
        early, other, junk = ("1764400001.M1P1.mx.example.net", "1764400002.M2P1.mx.example.net",
                              "1764400003.M3P1.mx.example.net")
        with open(os.path.join(new, other), "wb") as f:
            f.write(dsn("gone@example.org", returned=returned_headers(
                "<never.1@mail.example.com>", "gone@example.org")))
        with open(os.path.join(new, junk), "wb") as f:
            f.write(b"\x00\x01\x02\xff" * 100)
        e.start_daemon()
        wait_for(lambda: e.message(mid)[0] == "sending", 10, "the message being sent")
        with open(os.path.join(new, early), "wb") as f:
            f.write(dsn("ann@example.com", delivered_to=verp(mid)))
        listed = e.suppress_list()
        r = e.ctl("bounce", "receive", "--maildir", box, check=False)
        out, err = r.stdout.decode(), r.stderr.decode()
        self.assertEqual(r.returncode, EX_TEMPFAIL, err)
        self.assertIn("1 report taken in from %s (0 taken in before), 1 not mail, "
                      "1 kept for a later try\n" % box, out)
        self.assertIn("%s: " % early, err)
        self.assertIn("names message %d, which is still being sent: kept for a later try" % mid,
                      err)
        self.assertIn("1 file left in %s/new for a later run" % box, err)
        self.assertEqual(os.listdir(new), [early])
        self.assertEqual(sorted(os.listdir(cur)), [other + ":2,S", junk + ":2,S"])
        self.assertEqual(e.message(mid)[:2], ("sending", None))
        self.assertEqual(e.suppress_list(), listed)

        wait_for(lambda: e.message(mid)[0] == "sent", 10, "the message recorded sent")
        r = e.ctl("bounce", "receive", "--maildir", box, check=False)
        self.assertEqual(r.returncode, EX_OK, r.stderr.decode())
        self.assertIn("1 report taken in from %s (0 taken in before), 0 not mail\n" % box,
                      r.stdout.decode())
        self.assertEqual(os.listdir(new), [])
        self.assertEqual(e.message(mid)[:2], ("bounced", "hard"))
        self.assertEqual([(s["email"], s["reason"]) for s in e.suppress_list()],
                         [("ann@example.com", "hard-bounce")])
        e.stop_daemon(self)


if __name__ == "__main__":
    unittest.main()
