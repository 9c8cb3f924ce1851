"""The unsubscribe webhook and HTTP API end to end: the real bulkmaild (with its relay, a real
aiosmtpd server on loopback) answering a real HTTP client (http.client, raw sockets for abuse)."""
import email
import email.policy
import glob
import http.client
import json
import os
import random
import re
import resource
import signal
import socket
import sqlite3
import threading
import time
import unittest
import urllib.parse

from daemon_test import SECRET, Env, wait_for

AUTH = {"Authorization": "Bearer " + SECRET}


class WebhookEnv(Env):
    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def api(self, method, path, obj=None, headers=None):
        h = dict(AUTH)
        h.update(headers or {})
        body = None
        if obj is not None:
            body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
            h.setdefault("Content-Type", "application/json")
        status, hdrs, data = self.request(method, path, body, h)
        return status, (json.loads(data) if data else None)

    def wait_http(self):
        def up():
            try:
                return self.request("GET", "/healthz", timeout=1)[0] == 200
            except OSError:
                return False
        wait_for(up, 10, "the webhook to answer")

    def delivered(self, to):
        """The List-Unsubscribe URL path of the message delivered to `to`, and the message."""
        for path in sorted(glob.glob(os.path.join(self.out, "*.eml"))):
            with open(path, "rb") as f:
                msg = email.message_from_binary_file(f, policy=email.policy.default)
            if msg["To"] == to:
                url = msg["List-Unsubscribe"].split(",")[0].strip().strip("<>")
                return urllib.parse.urlsplit(url).path, msg
        return None, None

    def suppression(self, address):
        return self.rows("SELECT category, reason, source FROM suppressions WHERE address = ?", address)

    def connect(self, source="127.0.0.1", timeout=5):
        """A connection to the webhook from `source`: any 127.x.y.z is loopback, and each is a
        client address of its own to the server."""
        return socket.create_connection(("127.0.0.1", self.http_port), timeout=timeout,
                                        source_address=(source, 0))

    def raw(self, data, read_timeout=5, source="127.0.0.1"):
        """Sends raw bytes on a fresh connection; returns everything the server answered."""
        s = self.connect(source, read_timeout)
        try:
            s.sendall(data)
            return read_to_end(s)
        finally:
            s.close()

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.daemon.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_to_end(s):
    """Everything `s` receives until the server closes it (or its timeout passes)."""
    chunks = []
    while True:
        try:
            b = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not b:
            break
        chunks.append(b)
    return b"".join(chunks)


def responses_in(answer):
    """How many responses `answer` holds (their status lines)."""
    return len(re.findall(rb"HTTP/1\.[01] \d{3} [A-Z]", answer))


def status_of(answer):
    """The status code of the first response in `answer`, or None."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


class WebhookTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.env = e = WebhookEnv(connections=2)
        e.start_server()
        e.start_daemon()
        e.wait_http()
        e.enqueue("pat@example.com")
        e.enqueue("sam@example.com")
        e.enqueue("kim@example.com")
        wait_for(lambda: len(e.received()) == 3, 20, "three deliveries")
        cls.pat, _ = e.delivered("pat@example.com")
        cls.sam, _ = e.delivered("sam@example.com")
        cls.kim, _ = e.delivered("kim@example.com")

    @classmethod
    def tearDownClass(cls):
        cls.env.close()

    # --- the unsubscribe routes ---------------------------------------------------------------

    def test_get_shows_the_page_and_changes_nothing(self):
        e = self.env
        status, headers, body = e.request("GET", self.sam)
        self.assertEqual(status, 200)
        page = body.decode()
        self.assertIn("s***@example.com", page)
        self.assertNotIn("sam@example.com", page)
        self.assertIn("Updates about your services", page)
        self.assertIn('name="scope" value="category"', page)
        self.assertIn('name="scope" value="all"', page)
        self.assertNotIn("<script", page)
        self.assertNotIn("http://", page.replace("http-equiv", ""))
        self.assertEqual(headers["Referrer-Policy"], "no-referrer")
        self.assertIn("default-src 'none'", headers["Content-Security-Policy"])
        # ?scope=all (the footer's "all mail" link) puts "stop all mail" first.
        _, _, all_page = e.request("GET", self.sam + "?scope=all")
        all_page = all_page.decode()
        self.assertLess(all_page.index('value="all"'), all_page.index('value="category"'))
        status, headers, body = e.request("HEAD", self.sam)
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(int(headers["Content-Length"]), len(page.encode()))
        self.assertEqual(e.suppression("sam@example.com"), [])

    def test_one_click_suppresses_the_category_at_once_and_is_idempotent(self):
        e = self.env
        for _ in range(2):
            status, _, body = e.request("POST", self.pat, "List-Unsubscribe=One-Click",
                                        {"Content-Type": "application/x-www-form-urlencoded"})
            self.assertEqual(status, 200)
            self.assertIn(b"You are unsubscribed", body)
        self.assertEqual(e.suppression("pat@example.com"), [("customer-update", "unsubscribe", "one-click")])
        events = e.rows("SELECT source FROM events WHERE address = ? AND type = 'suppression-added'",
                        "pat@example.com")
        self.assertEqual(events, [("one-click",)])
        # The next message to that address is never sent.
        before = len(e.received())
        mid = e.enqueue("pat@example.com")
        wait_for(lambda: e.state(mid)[0] == "suppressed", 10, "the new message to end suppressed")
        time.sleep(0.3)
        self.assertEqual(len(e.received()), before)

    def test_a_persons_one_click_over_an_operators_suppression_is_recorded_and_needs_consent_to_lift(self):
        e = self.env
        e.ctl("suppress", "add", "mia@example.com", "--category", "customer-update")  # manual
        link = e.ctl("unsubscribe-link", "--category", "customer-update", "mia@example.com").stdout
        path = urllib.parse.urlsplit(link.decode().strip()).path
        status, _, body = e.request("POST", path, "List-Unsubscribe=One-Click",
                                    {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200)
        # Her own request is the record now, and the evidence says so.
        self.assertEqual(e.suppression("mia@example.com"), [("customer-update", "unsubscribe", "one-click")])
        added = e.rows("SELECT source, detail FROM events WHERE address = ? AND type = 'suppression-added' "
                       "ORDER BY id", "mia@example.com")
        self.assertEqual([a[0] for a in added], ["cli", "one-click"])
        self.assertIn("raised from manual", added[1][1])
        # Lifting it without her renewed consent is refused.
        r = e.ctl("suppress", "remove", "mia@example.com", "--category", "customer-update", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"consent", r.stderr)
        self.assertEqual(len(e.suppression("mia@example.com")), 1)

    def test_one_click_as_multipart(self):
        e = self.env
        body = ("--b0undary\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
                "One-Click\r\n--b0undary--\r\n")
        status, _, _ = e.request("POST", self.kim, body,
                                 {"Content-Type": "multipart/form-data; boundary=b0undary"})
        self.assertEqual(status, 200)
        self.assertEqual(e.suppression("kim@example.com"), [("customer-update", "unsubscribe", "one-click")])

    def test_a_multipart_boundary_not_at_a_line_start_is_400_not_500(self):
        e = self.env
        for before in ("x", "\n", "\r", "xy"):
            body = (before + "--b0undary\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
                    "One-Click\r\n--b0undary--\r\n")
            status, _, _ = e.request("POST", self.kim, body,
                                     {"Content-Type": "multipart/form-data; boundary=b0undary"})
            self.assertEqual(status, 400, repr(before))
        _, _, metrics = e.request("GET", "/metrics")
        self.assertNotIn(b'status="500"', metrics)

    def test_the_form_can_stop_all_mail(self):
        e = self.env
        status, _, body = e.request("POST", self.sam, "scope=all",
                                    {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200, body)
        self.assertIn(b"No more mail from Example Telecom", body)
        self.assertIn(("", "unsubscribe", "web"), e.suppression("sam@example.com"))

    def test_bad_tokens_get_400_and_change_nothing(self):
        e = self.env
        before = e.rows("SELECT count(*) FROM suppressions")
        token = self.pat.rsplit("/", 1)[1]
        flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
        for path in ["/unsubscribe/" + flipped, "/unsubscribe/" + token[:20], "/unsubscribe/!!!",
                     "/unsubscribe/" + "A" * 600]:
            for method, body in (("GET", None), ("POST", "List-Unsubscribe=One-Click")):
                status, _, page = e.request(method, path, body)
                self.assertEqual(status, 400, (method, path))
                self.assertIn(b"This link does not work", page)
        self.assertEqual(e.rows("SELECT count(*) FROM suppressions"), before)

    def test_a_post_that_asks_nothing_is_400(self):
        e = self.env
        for body, ctype in (("", "application/x-www-form-urlencoded"), ("scope=everything", None),
                            ("List-Unsubscribe=One-Click", "text/plain"), ("a=%zz", None)):
            status, _, _ = e.request("POST", self.kim, body,
                                     {"Content-Type": ctype} if ctype else {})
            self.assertEqual(status, 400, body)

    def test_ten_thousand_forged_tokens_are_all_refused(self):
        e = self.env
        token = self.pat.rsplit("/", 1)[1]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        rng = random.Random(8058)
        forged = set()
        attempt = 0
        while len(forged) < 10000:
            attempt += 1
            kind = attempt % 3
            if kind == 0:  # one character of a real token changed
                pos = rng.randrange(len(token))
                t = token[:pos] + rng.choice(alphabet.replace(token[pos], "")) + token[pos + 1:]
            elif kind == 1:  # a real token cut short or made longer
                t = token[:rng.randrange(1, len(token))] if rng.random() < 0.5 else token + rng.choice(alphabet)
            else:  # random text of a plausible length
                t = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40, 120)))
            if t != token:
                forged.add(t)
        c = http.client.HTTPConnection("127.0.0.1", e.http_port, timeout=10)
        statuses = {}
        for t in forged:
            c.request("POST", "/unsubscribe/" + t, body="List-Unsubscribe=One-Click",
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
            r = c.getresponse()
            r.read()
            statuses[r.status] = statuses.get(r.status, 0) + 1
        c.close()
        self.assertEqual(statuses, {400: 10000})
        self.assertEqual(e.suppression("pat@example.com"), [("customer-update", "unsubscribe", "one-click")])

    # --- routes, methods, health, metrics ------------------------------------------------------

    def test_unknown_routes_and_wrong_methods(self):
        e = self.env
        self.assertEqual(e.request("GET", "/")[0], 404)
        self.assertEqual(e.request("GET", "/unsubscribe")[0], 404)
        self.assertEqual(e.request("GET", "/unsubscribe/a/b")[0], 404)
        status, headers, _ = e.request("PUT", self.kim, "x")
        self.assertEqual((status, headers["Allow"]), (405, "GET, HEAD, POST"))
        self.assertEqual(e.request("POST", "/healthz", "")[0], 405)
        self.assertEqual(e.request("DELETE", "/metrics")[0], 405)
        self.assertEqual(e.api("GET", "/api/v1/messages")[0], 405)
        self.assertEqual(e.api("PUT", "/api/v1/suppressions/a@example.com")[0], 405)
        self.assertEqual(e.api("GET", "/api/v1/nothing")[0], 404)

    def test_healthz_and_metrics(self):
        e = self.env
        status, _, body = e.request("GET", "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        status, headers, body = e.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        self.assertGreaterEqual(values['bulkmail_deliveries_total{outcome="sent"}'], 3)
        self.assertGreaterEqual(values['bulkmail_smtp_replies_total{class="2xx"}'], 3)
        self.assertEqual(values['bulkmail_delivery_latency_seconds_bucket{le="+Inf"}'],
                         values["bulkmail_delivery_latency_seconds_count"])
        self.assertIn('bulkmail_messages{state="sent"}', values)
        self.assertIn('bulkmail_unsubscribes_total{source="one-click"}', values)
        self.assertTrue(any(k.startswith("bulkmail_webhook_requests_total{route=\"healthz\",status=\"200\"")
                            for k in values))
        for line in text.splitlines():  # no address ever appears
            self.assertNotIn("@", line)
        # The store's feedback counters: every family and label, from the start.
        for kind in ("bounce", "delay", "complaint", "auto-reply", "unknown"):
            self.assertIn('bulkmail_reports_total{kind="%s"}' % kind, values)
        for cls in ("hard", "soft", "policy", "unknown"):
            self.assertIn('bulkmail_report_recipients_total{class="%s"}' % cls, values)
        for name in ("unmatched", "forged", "recipient_mismatch", "not_sent", "duplicate"):
            self.assertIn("bulkmail_reports_%s_total" % name, values)
        self.assertIn("bulkmail_campaign_auto_pauses_total", values)

    def metric_values(self):
        text = self.env.request("GET", "/metrics")[2].decode()
        return dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))

    def test_metrics_read_the_feedback_counters_from_the_database_on_each_scrape(self):
        e = self.env
        before = self.metric_values()
        # As bulkmailctl bounce receive counts, in another process: the next scrape has it. A name
        # this version does not know (a newer one's) is left out.
        db = sqlite3.connect(os.path.join(e.dir, "queue.db"), timeout=10)
        try:
            with db:
                db.executemany("INSERT INTO feedback_counters (name, count) VALUES (?, ?) ON CONFLICT (name) "
                               "DO UPDATE SET count = count + excluded.count",
                               [("report:complaint", 2), ("mismatch", 1), ("report:from-the-future", 5)])
        finally:
            db.close()
        after = self.metric_values()
        for name, added in (('bulkmail_reports_total{kind="complaint"}', 2),
                            ("bulkmail_reports_recipient_mismatch_total", 1),
                            ('bulkmail_reports_total{kind="bounce"}', 0)):
            self.assertEqual(float(after[name]) - float(before[name]), added, name)
        self.assertFalse([k for k in after if "future" in k])

    # --- the API --------------------------------------------------------------------------------

    def test_api_needs_the_bearer_token(self):
        e = self.env
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": SECRET},
                        {"Authorization": "Bearer " + SECRET[:-1]}):
            status, h, _ = e.request("GET", "/api/v1/status", headers=headers)
            self.assertEqual(status, 401, headers)
            self.assertIn("Bearer", h["WWW-Authenticate"])

    def test_api_status_matches_the_cli(self):
        e = self.env
        status, body = e.api("GET", "/api/v1/status")
        self.assertEqual(status, 200)
        cli = json.loads(e.ctl("status", "--json").stdout)
        self.assertEqual(set(body), set(cli))

    def test_api_status_of_a_campaign_matches_the_cli(self):
        e = self.env
        mid = e.enqueue("status.campaign@example.com", campaign="status-check")
        wait_for(lambda: e.state(mid)[0] == "sent", 10, "the campaign's message")
        status, body = e.api("GET", "/api/v1/status?campaign=status-check")
        self.assertEqual(status, 200, body)
        cli = json.loads(e.ctl("status", "--campaign", "status-check", "--json").stdout)
        self.assertEqual(set(body), set(cli))
        self.assertEqual(set(body["campaign"]), set(cli["campaign"]))
        self.assertEqual(body["campaign"]["name"], "status-check")
        status, body = e.api("GET", "/api/v1/status?campaign=no-such-campaign")
        self.assertEqual(status, 404)
        self.assertIn("unknown campaign 'no-such-campaign'", body["error"])

    def test_api_campaign_rates_from_the_relays_answers(self):
        e = self.env
        # The relay takes ok.*, refuses bounce.* at RCPT TO (a dead address) and spam.* after DATA
        # (a block): one of three answered is a hard bounce, one a block.
        ids = [e.enqueue(to, campaign="rates") for to in
               ("ok.rates@example.com", "bounce.rates@example.com", "spam.rates@example.com")]
        wait_for(lambda: [e.state(i)[0] for i in ids] == ["sent", "failed", "failed"], 20, "the relay's answers")
        status, c = e.api("GET", "/api/v1/campaigns/rates")
        self.assertEqual(status, 200, c)
        self.assertEqual((c["name"], c["total"], c["answered"], c["hard_bounces"], c["blocks"], c["complaints"]),
                         ("rates", 3, 3, 1, 1, 0))
        self.assertAlmostEqual(c["hard_bounce_rate"], 1 / 3)
        self.assertAlmostEqual(c["block_rate"], 1 / 3)
        self.assertEqual(c["complaint_rate"], 0)
        self.assertEqual((c["paused"], c["paused_since"], c["pause_reason"]), (False, None, None))
        # The same figures as bulkmailctl's, from the same JSON.
        cli = json.loads(e.ctl("status", "--campaign", "rates", "--json").stdout)
        self.assertEqual(cli["campaign"], c)
        status, listed = e.api("GET", "/api/v1/campaigns")
        self.assertEqual(status, 200)
        self.assertEqual([x for x in listed if x["name"] == "rates"], [c])
        text = e.ctl("status", "--campaign", "rates").stdout.decode()
        self.assertIn("hard-bounce rate 33.33% (1 of 3 answered)\n", text)
        self.assertIn("complaint rate 0.00% (0 of 3 answered)\n", text)
        self.assertIn("block rate 33.33% (1 of 3 answered)\n", text)

    def test_api_pause_and_resume_a_campaign(self):
        e = self.env
        first = e.enqueue("first.held@example.com", campaign="held")
        wait_for(lambda: e.state(first)[0] == "sent", 10, "the first message")
        status, body = e.api("POST", "/api/v1/campaigns/held/pause")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["name"], body["paused"], body["changed"], body["held"], body["pause_reason"]),
                         ("held", True, True, 0, None))
        self.assertNotIn("released", body)
        # bulkmailctl sees the same pause, a person's.
        self.assertEqual(e.ctl("pause", "--campaign", "held").stdout.decode(),
                         "campaign held is already paused (since %s by an operator)\n" % body["paused_since"])
        # Messages joining the paused campaign wait.
        later = [e.enqueue(to, campaign="held") for to in ("second.held@example.com", "third.held@example.com")]
        time.sleep(1)
        self.assertEqual([e.state(i)[0] for i in later], ["queued", "queued"])
        status, body = e.api("POST", "/api/v1/campaigns/held/pause")
        self.assertEqual((status, body["changed"], body["held"]), (200, False, 0))
        status, body = e.api("GET", "/api/v1/campaigns/held")
        self.assertEqual((status, body["queued"], body["sent"], body["paused"]), (200, 2, 1, True))
        status, body = e.api("POST", "/api/v1/campaigns/held/resume")
        self.assertEqual((status, body["changed"], body["released"], body["paused"]), (200, True, 2, False))
        self.assertNotIn("held", body)
        wait_for(lambda: [e.state(i)[0] for i in later] == ["sent", "sent"], 10, "the released messages")
        status, body = e.api("POST", "/api/v1/campaigns/held/resume")
        self.assertEqual((status, body["changed"], body["released"]), (200, False, 0))
        self.assertIn("campaign held is already running", e.ctl("resume", "--campaign", "held").stdout.decode())

    def test_api_campaign_routes_refuse_what_they_cannot_do(self):
        e = self.env
        # Sent before the checks, so that no delivery of this test's is left to land in another's.
        mid = e.enqueue("refuse.held@example.com", campaign="refusals")
        wait_for(lambda: e.state(mid)[0] == "sent", 10, "the campaign's message")
        for method, path in (("POST", "/api/v1/campaigns/nope/pause"), ("POST", "/api/v1/campaigns/nope/resume"),
                             ("GET", "/api/v1/campaigns/nope")):
            status, body = e.api(method, path)
            self.assertEqual(status, 404, path)
            self.assertEqual(body["error"], "unknown campaign 'nope' (GET /api/v1/campaigns lists them)")
        for path in ("/api/v1/campaigns/bad%20name/pause", "/api/v1/campaigns/bad!/resume"):
            status, body = e.api("POST", path)
            self.assertEqual((status, body.get("field")), (400, "campaign"), path)
        for method, path, allow in (("GET", "/api/v1/campaigns/refusals/pause", "POST"),
                                    ("PUT", "/api/v1/campaigns/refusals/resume", "POST"),
                                    ("DELETE", "/api/v1/campaigns/refusals", "GET, HEAD"),
                                    ("POST", "/api/v1/campaigns", "GET, HEAD")):
            status, headers, _ = e.request(method, path, headers=AUTH)
            self.assertEqual((status, headers.get("Allow")), (405, allow), (method, path))
        # Without the bearer token nothing is read or changed.
        self.assertEqual(e.request("POST", "/api/v1/campaigns/refusals/pause")[0], 401)
        self.assertEqual(e.request("GET", "/api/v1/campaigns/refusals")[0], 401)
        self.assertEqual(e.api("GET", "/api/v1/campaigns/refusals")[1]["paused"], False)

    def test_api_suppressions(self):
        e = self.env
        status, body = e.api("POST", "/api/v1/suppressions", {"email": "Lee@Example.COM", "reason": "manual"})
        self.assertEqual(status, 201)
        self.assertEqual((body["email"], body["category"], body["source"]), ("lee@example.com", None, "api"))
        self.assertEqual(e.api("POST", "/api/v1/suppressions", {"email": "lee@example.com"})[0], 200)
        status, body = e.api("GET", "/api/v1/suppressions/lee%40example.com")
        self.assertEqual((status, body["reason"]), (200, "manual"))
        self.assertEqual(e.api("GET", "/api/v1/suppressions/nobody@example.com")[0], 404)
        status, body = e.api("DELETE", "/api/v1/suppressions/lee@example.com")
        self.assertEqual(status, 200)
        self.assertEqual(e.api("GET", "/api/v1/suppressions/lee@example.com")[0], 404)
        self.assertEqual(e.api("DELETE", "/api/v1/suppressions/lee@example.com")[0], 404)
        # A recipient's own opt-out is lifted only with force.
        e.api("POST", "/api/v1/suppressions", {"email": "ray@example.com", "category": "customer-update",
                                               "reason": "unsubscribe"})
        status, body = e.api("DELETE", "/api/v1/suppressions/ray@example.com?category=customer-update")
        self.assertEqual(status, 409)
        self.assertIn("force=true", body["error"])
        self.assertEqual(e.api("DELETE", "/api/v1/suppressions/ray@example.com?category=customer-update&force=true")[0], 200)

    def test_api_rejects_bad_input_naming_the_field(self):
        e = self.env
        cases = [
            ("/api/v1/suppressions", b"{not json", None),
            ("/api/v1/suppressions", [1, 2], None),
            ("/api/v1/suppressions", {"email": "a@example.com", "colour": "red"}, "colour"),
            ("/api/v1/suppressions", {"email": "no-at-sign"}, "email"),
            ("/api/v1/suppressions", {}, "email"),
            ("/api/v1/suppressions", {"email": 5}, "email"),
            ("/api/v1/suppressions", {"email": "a@example.com", "category": "nope"}, "category"),
            ("/api/v1/suppressions", {"email": "a@example.com", "reason": "bored"}, "reason"),
            ("/api/v1/messages", {"category": "customer-update"}, "to"),
            ("/api/v1/messages", {"category": "nope", "to": "a@example.com"}, "category"),
            ("/api/v1/messages", {"category": "customer-update", "to": "a@@example.com"}, "to"),
            ("/api/v1/messages", {"category": "customer-update", "to": "a@example.com", "vars": []}, "vars"),
            ("/api/v1/messages", {"category": "customer-update", "to": "a@example.com",
                                  "vars": {"x": {"deep": 1}}}, "vars.x"),
            ("/api/v1/messages", {"category": "customer-update", "to": "a@example.com",
                                  "campaign": "bad campaign!"}, "campaign"),
        ]
        for path, obj, field in cases:
            body = obj if isinstance(obj, bytes) else json.dumps(obj)
            status, answer = e.api("POST", path, body)
            self.assertEqual(status, 400, (path, obj, answer))
            self.assertIn("error", answer)
            if field:
                self.assertEqual(answer.get("field"), field, answer)
        self.assertEqual(e.api("GET", "/api/v1/suppressions/not-an-address")[0], 400)
        status, _ = e.api("POST", "/api/v1/messages", "{}", {"Content-Type": "text/plain"})
        self.assertEqual(status, 415)

    def test_api_media_types_are_case_insensitive_and_may_carry_parameters(self):
        e = self.env
        for ctype in ("APPLICATION/JSON", "application/json; charset=UTF-8", "Application/Json ;charset=utf-8"):
            status, body = e.api("POST", "/api/v1/suppressions", {"email": "media.type@example.com"},
                                 {"Content-Type": ctype})
            self.assertIn(status, (200, 201), (ctype, body))
        for ctype in ("text/json", "application/jsonp", "application/x-www-form-urlencoded"):
            status, _ = e.api("POST", "/api/v1/suppressions", {"email": "media.type@example.com"},
                              {"Content-Type": ctype})
            self.assertEqual(status, 415, ctype)

    def test_api_refuses_a_key_given_twice_naming_it(self):
        e = self.env
        vars_ = '"vars": {"first_name": "A", "headline": "H", "body": "B"}'
        cases = [
            ('{"category": "customer-update", "to": "dup.a@example.com", "to": "dup.b@example.com", %s}' % vars_,
             "to"),
            ('{"category": "customer-update", "to": "dup.c@example.com", '
             '"vars": {"first_name": "A", "headline": "H", "body": "B", "body": "C"}}', "vars.body"),
        ]
        for body, field in cases:
            status, answer = e.api("POST", "/api/v1/messages", body)
            self.assertEqual((status, answer.get("field")), (400, field), answer)
            self.assertIn('"%s"' % field, answer["error"])
        status, answer = e.api("POST", "/api/v1/suppressions",
                               '{"email": "dup.d@example.com", "email": "dup.e@example.com"}')
        self.assertEqual((status, answer.get("field")), (400, "email"), answer)
        self.assertEqual(e.rows("SELECT count(*) FROM messages WHERE recipient LIKE 'dup.%'"), [(0,)])
        self.assertEqual(e.rows("SELECT count(*) FROM suppressions WHERE address LIKE 'dup.%'"), [(0,)])

    def test_api_queues_a_message_that_is_delivered(self):
        e = self.env
        status, body = e.api("POST", "/api/v1/messages", {
            "category": "customer-update", "to": "api.user@example.com", "campaign": "api-test",
            "vars": {"first_name": "Ada", "headline": "Hello", "body": "From the API", "n": 3}})
        self.assertEqual(status, 201, body)
        self.assertEqual(body["state"], "queued")
        wait_for(lambda: e.state(body["id"])[0] == "sent", 10, "the API message to be sent")
        status, answer = e.api("POST", "/api/v1/messages", {
            "category": "customer-update", "to": "api.user@example.com", "campaign": "api-test",
            "vars": {"first_name": "Ada", "headline": "Hello", "body": "From the API"}})
        self.assertEqual((status, answer["field"]), (409, "campaign"))

    # --- abuse ----------------------------------------------------------------------------------

    def test_oversized_headers_and_bodies(self):
        e = self.env
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n"
        self.assertTrue(e.raw(big).startswith(b"HTTP/1.1 431"))
        status, _, _ = e.request("POST", self.kim, "List-Unsubscribe=One-Click&pad=" + "x" * 70000,
                                 {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 413)

    def test_garbage_gets_400_and_the_connection_is_closed(self):
        e = self.env
        answer = e.raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer[:40])
        answer = e.raw(b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer[:40])
        self.assertEqual(e.request("GET", "/healthz")[0], 200)  # and the server is fine

    def test_the_servers_own_refusals_are_counted_by_reason_in_metrics(self):
        e = self.env
        prefix = 'bulkmail_http_refused_total{reason="'

        def refused():
            return {k[len(prefix):-2]: float(v) for k, v in self.metric_values().items()
                    if k.startswith(prefix)}

        before = refused()
        self.assertEqual(set(before), {"malformed", "unsupported-coding", "header-too-large",
                                       "body-too-large", "read-timeout", "server-full",
                                       "client-full", "no-answer"})
        self.assertTrue(e.raw(b"\x16\x03\x01 garbage\r\n\r\n").startswith(b"HTTP/1.1 400"))
        self.assertTrue(e.raw(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 +
                              b"\r\n\r\n").startswith(b"HTTP/1.1 431"))
        self.assertTrue(e.raw(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked"
                              b"\r\n\r\n0\r\n\r\n").startswith(b"HTTP/1.1 501"))
        self.assertEqual(e.request("GET", "/nowhere")[0], 404)  # a route's answer: not a refusal
        after = refused()
        changed = {k: after[k] - before[k] for k in before if after[k] != before[k]}
        self.assertEqual(changed, {"malformed": 1, "header-too-large": 1, "unsupported-coding": 1})

    def test_ambiguous_framing_is_400_and_a_request_hidden_in_the_body_is_never_answered(self):
        # RFC 9112 6.3: a Transfer-Encoding that does not end in chunked, or one beside a
        # Content-Length, leaves the body's length unknown. Read as no body, the body's bytes
        # would be served as the next request: here a GET /metrics.
        e = self.env
        hidden = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
        cases = [
            (b"Transfer-Encoding: identity\r\n", hidden, 400),
            (b"Transfer-Encoding: gzip\r\n", hidden, 400),
            (b"Transfer-Encoding: xchunked\r\n", hidden, 400),
            (b"Transfer-Encoding: chunked, identity\r\n", hidden, 400),
            (b"Transfer-Encoding: chunked;q=1\r\n", hidden, 400),
            (b"Transfer-Encoding: \r\n", hidden, 400),
            (b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n" + hidden, 400),
            (b"Transfer-Encoding: identity\r\nContent-Length: %d\r\n" % len(hidden), hidden, 400),
            (b"Content-Length: %d\r\nTransfer-Encoding: identity\r\n" % len(hidden), hidden, 400),
            (b"Content-Length: 0\r\nContent-Length: 0\r\n", hidden, 400),
            (b"Content-Length: 0, 0\r\n", hidden, 400),
            (b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n" + hidden, 501),
            (b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + hidden, 501),
        ]
        for headers, body, status in cases:
            answer = e.raw(b"POST /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body)
            self.assertEqual(status_of(answer), status, (headers, answer[:80]))
            self.assertEqual(responses_in(answer), 1, (headers, answer))  # one answer, then closed
            self.assertIn(b"\r\nConnection: close\r\n", answer)
            self.assertNotIn(b"bulkmail_", answer)
        answer = e.raw(b"POST /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden)
        self.assertEqual((status_of(answer), responses_in(answer)), (400, 1), answer[:80])
        # Sound framing is still read: a chunked body, and a body with one Content-Length; what
        # follows it is the next request.
        pipelined = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        for framing in (b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
                        b"Transfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
                        b"Content-Length: 1\r\n\r\nx"):
            answer = e.raw(b"POST /healthz HTTP/1.1\r\nHost: x\r\n" + framing + pipelined)
            self.assertEqual(answer.count(b"HTTP/1.1 405"), 1, (framing, answer[:80]))
            self.assertEqual(answer.count(b"HTTP/1.1 200"), 1, (framing, answer[:80]))

    def test_an_http_1_1_request_needs_exactly_one_host(self):
        e = self.env
        for request, status in ((b"GET /healthz HTTP/1.1\r\n\r\n", 400),
                                (b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
                                (b"GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
                                (b"GET /healthz HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n", 200),
                                (b"GET /healthz HTTP/1.1\r\nhost: x\r\nConnection: close\r\n\r\n", 200),
                                (b"GET /healthz HTTP/1.0\r\n\r\n", 200),
                                # Two media types: the route must not read the body by whichever
                                # comes first.
                                (b"POST /api/v1/messages HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Type: application/json\r\nContent-Type: text/plain\r\n"
                                 b"Content-Length: 2\r\n\r\n{}", 400)):
            answer = e.raw(request)
            self.assertEqual(status_of(answer), status, (request, answer[:80]))

    def test_an_unfinished_request_gets_408_and_an_idle_connection_just_closes(self):
        e = self.env
        short_body = e.connect(timeout=20)
        short_body.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        half_header = e.connect(timeout=20)
        half_header.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        silent = e.connect(timeout=20)
        idle = e.connect(timeout=20)
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.time()
        answers = []
        for s in (short_body, half_header, silent, idle):
            answers.append(read_to_end(s))
            s.close()
        elapsed = time.time() - start
        for answer in answers[:2]:
            self.assertEqual(status_of(answer), 408, answer[:80])
            self.assertIn(b"\r\nConnection: close\r\n", answer)
        self.assertEqual(answers[2], b"")  # no request begun: closed without a word
        self.assertEqual(status_of(answers[3]), 200)  # answered, then idle: nothing more
        self.assertEqual(responses_in(answers[3]), 1)
        self.assertGreater(elapsed, 8)
        self.assertLess(elapsed, 15)

    def test_a_client_sending_one_byte_a_second_is_cut_off(self):
        e = self.env
        s = socket.create_connection(("127.0.0.1", e.http_port))
        s.settimeout(1)  # each recv() waits a second: the pace of the trickle
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
        start = time.time()
        answer = b""
        closed = False
        for byte in request:
            try:
                s.sendall(bytes([byte]))
                chunk = s.recv(1024)
                if not chunk:
                    closed = True
                    break
                answer += chunk
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
            if time.time() - start > 25:
                break
        elapsed = time.time() - start
        s.close()
        self.assertTrue(closed, "the server kept a trickling client for %.0f s" % elapsed)
        self.assertTrue(answer.startswith(b"HTTP/1.1 408"), answer[:40])
        self.assertGreater(elapsed, 8)
        self.assertLess(elapsed, 15)
        self.assertEqual(e.request("GET", "/healthz")[0], 200)

    def test_keep_alive_serves_many_requests_on_one_connection(self):
        e = self.env
        c = http.client.HTTPConnection("127.0.0.1", e.http_port, timeout=5)
        for _ in range(20):
            c.request("GET", "/healthz")
            r = c.getresponse()
            self.assertEqual(r.read(), b"ok\n")
        c.close()


class ApiOffTest(unittest.TestCase):
    def test_without_a_token_file_the_api_is_off_and_the_rest_works(self):
        e = WebhookEnv()
        try:
            with open(e.config) as f:
                text = f.read()
            with open(e.config, "w") as f:
                f.write(text.replace("  api_token_file: api.token\n", ""))
            e.start_server()
            e.start_daemon()
            e.wait_http()
            status, body = e.api("GET", "/api/v1/status")
            self.assertEqual(status, 404)
            self.assertIn("the API is off", body["error"])
            self.assertEqual(e.api("POST", "/api/v1/suppressions", {"email": "a@example.com"})[0], 404)
            self.assertEqual(e.rows("SELECT count(*) FROM suppressions"), [(0,)])
            self.assertEqual(e.request("GET", "/metrics")[0], 200)
        finally:
            e.close()


class FailedReloadTest(unittest.TestCase):
    def test_a_config_that_fails_to_reload_shows_in_healthz_metrics_and_status(self):
        e = WebhookEnv()
        try:
            e.start_server()
            e.start_daemon()
            e.wait_http()
            with open(e.config) as f:
                good = f.read()
            with open(e.config, "w") as f:
                f.write(good.replace("messages_per_second: 1000", "messages_per_second: -5"))
            e.daemon.send_signal(signal.SIGHUP)
            line = None

            def degraded():
                nonlocal line
                line = e.request("GET", "/healthz")[2].decode()
                return line.startswith("degraded")
            wait_for(degraded, 10, "/healthz to say degraded")
            self.assertIn("throttle.messages_per_second: must not be negative", line)
            self.assertIn("still running on the config loaded at ", line)
            self.assertIn("bulkmail_config_last_reload_successful 0\n",
                          e.request("GET", "/metrics")[2].decode())
            # bulkmailctl names the problem, says the daemon still runs, and status still reports.
            r = e.ctl("status", check=False)
            self.assertEqual(r.returncode, 3)
            err = r.stderr.decode()
            self.assertIn("bulkmailctl: the config is invalid (1 problem); bulkmaild is still running on "
                          "the previous version of this file", err)
            self.assertIn("config: the config file is invalid (", r.stdout.decode())
            r = e.ctl("status", "--json", check=False)
            self.assertIn("still running on the config loaded at",
                          json.loads(r.stdout)["dispatch"]["config_problem"])
            # Other commands refuse, saying the same.
            r = e.ctl("campaigns", check=False)
            self.assertEqual(r.returncode, 3)
            self.assertIn("bulkmaild is still running", r.stderr.decode())
            # Fixed and reloaded: healthy again everywhere.
            with open(e.config, "w") as f:
                f.write(good)
            e.daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: e.request("GET", "/healthz")[2] == b"ok\n", 10, "/healthz to say ok")
            self.assertIn("bulkmail_config_last_reload_successful 1\n",
                          e.request("GET", "/metrics")[2].decode())
            wait_for(lambda: "config:" not in e.ctl("status").stdout.decode(), 10,
                     "status to drop the config line")
        finally:
            e.close()


class RestartKeyReloadTest(unittest.TestCase):
    def test_a_reload_names_the_changed_key_that_waits_for_a_restart_and_keeps_running(self):
        e = WebhookEnv()
        try:
            e.start_server()
            e.start_daemon()
            e.wait_http()
            with open(e.config) as f:
                good = f.read()
            # The webhook's connection cap is fixed when the socket opens; the throttle reloads
            # in place.
            changed = good.replace("  api_token_file: api.token\n",
                                   "  api_token_file: api.token\n  max_connections: 600\n")
            changed = changed.replace("messages_per_second: 1000", "messages_per_second: 500")
            self.assertIn("api_token_file: api.token\n  max_connections: 600\n", changed)
            self.assertIn("messages_per_second: 500\n", changed)
            with open(e.config, "w") as f:
                f.write(changed)
            e.daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: "reloaded" in e.daemon_log(), 10, "the reload")
            # One warning, naming that key alone (the log line's prefix: a time and the level, or
            # journald's priority).
            warnings = [line for line in e.daemon_log().splitlines() if "after a restart" in line]
            self.assertEqual(len(warnings), 1, warnings)
            self.assertRegex(warnings[0], r"(^<4>|warning: )webhook\.max_connections changed but takes "
                                          r"effect only after a restart$")
            self.assertNotIn("throttle", warnings[0])
            # Reloaded again with the file unchanged: the key still waits for the restart, and the
            # daemon says so again rather than taking the new value as the one in force.
            e.daemon.send_signal(signal.SIGHUP)
            wait_for(lambda: e.daemon_log().count("reloaded") == 2, 10, "the second reload")
            warnings = [line for line in e.daemon_log().splitlines() if "after a restart" in line]
            self.assertEqual(len(warnings), 2, warnings)
            self.assertIn("webhook.max_connections changed", warnings[1])
            # Still running, and healthy: not degraded, the reload took.
            wait_for(lambda: e.request("GET", "/healthz")[2] == b"ok\n", 10, "/healthz to say ok")
            self.assertEqual(e.request("GET", "/healthz")[0], 200)
            self.assertIsNone(e.daemon.poll())
        finally:
            e.close()


class PortTakenTest(unittest.TestCase):
    def test_a_taken_webhook_port_stops_the_daemon_with_the_address_named(self):
        e = WebhookEnv()
        blocker = socket.socket()
        try:
            blocker.bind(("127.0.0.1", e.http_port))
            blocker.listen(1)
            e.start_server()
            e.import_many(100)
            # Several starts: no sender may claim (or deliver) before the daemon is up, so a
            # start that fails leaves the queue exactly as it found it, and exits cleanly.
            for _ in range(5):
                e.start_daemon()
                self.assertEqual(e.daemon.wait(timeout=20), 1)
                self.assertIn("webhook: cannot listen on 127.0.0.1:%d: " % e.http_port, e.daemon_log())
                self.assertEqual(e.rows("SELECT state, attempts, count(*) FROM messages GROUP BY 1, 2"),
                                 [("queued", 0, 100)])
            self.assertEqual(len(e.received()), 0)
        finally:
            blocker.close()
            e.close()


class ConnectionCapTest(unittest.TestCase):
    """webhook.max_connections and webhook.max_connections_per_client. All of 127.0.0.0/8 is
    loopback, and each of its addresses is a client of its own to the server."""

    def start(self, settings):
        e = WebhookEnv()
        with open(e.config) as f:
            text = f.read()
        with open(e.config, "w") as f:
            f.write(text.replace("  api_token_file: api.token\n", "  api_token_file: api.token\n" + settings))
        e.start_server()
        e.start_daemon()
        e.wait_http()
        return e

    def hold(self, e, n, source="127.0.0.1"):
        """n keep-alive connections from `source`, each proven open by an answered request. (A
        bare connect is not enough: the server may still count a connection just closed, refuse
        one of these, and then have room for one more.)"""
        held = []
        deadline = time.time() + 10
        while len(held) < n and time.time() < deadline:
            s = e.connect(source)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if s.recv(4096).startswith(b"HTTP/1.1 200"):
                held.append(s)
            else:
                s.close()
                time.sleep(0.1)
        self.assertEqual(len(held), n, "connections held from %s" % source)
        return held

    def healthz(self, e, source):
        return e.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", source=source)

    def test_one_client_address_cannot_take_every_connection(self):
        # Every address here is loopback: without the reserve, they stand for remote clients.
        e = self.start("  max_connections: 6\n  max_connections_per_client: 2\n  loopback_reserve: 0\n")
        held = []
        try:
            held += self.hold(e, 2, "127.0.0.1")
            answer = self.healthz(e, "127.0.0.1")
            self.assertEqual(status_of(answer), 503, answer[:80])
            self.assertTrue(answer.endswith(b"too many connections from your address\n"), answer)
            # Half-open connections (nothing sent) count as well.
            held += [e.connect("127.0.0.2") for _ in range(2)]
            wait_for(lambda: status_of(self.healthz(e, "127.0.0.2")) == 503, 5,
                     "127.0.0.2 to be refused over its two half-open connections")
            # Every other client still gets in: health checks and one-click opt-outs alike.
            self.assertEqual(status_of(self.healthz(e, "127.0.0.3")), 200)
            link = e.ctl("unsubscribe-link", "--category", "customer-update", "cap@example.com").stdout
            path = urllib.parse.urlsplit(link.decode().strip()).path.encode()
            body = b"List-Unsubscribe=One-Click"
            answer = e.raw(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                           b"Content-Type: application/x-www-form-urlencoded\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(body) + body, source="127.0.0.4")
            self.assertEqual(status_of(answer), 200, answer[:80])
            self.assertEqual(e.suppression("cap@example.com"), [("customer-update", "unsubscribe", "one-click")])
            for s in held[:2]:
                s.close()
            wait_for(lambda: status_of(self.healthz(e, "127.0.0.1")) == 200, 5, "room for 127.0.0.1 again")
        finally:
            for s in held:
                s.close()
            e.close()

    def test_the_server_wide_cap_leaves_loopback_a_reserve_and_then_refuses(self):
        # max_connections 3, and loopback clients 8 more: 11 in all from these (loopback) clients.
        e = self.start("  max_connections: 3\n")
        held = []
        try:
            for i in range(11):
                held += self.hold(e, 1, "127.0.1.%d" % (i + 1))
            answer = self.healthz(e, "127.0.2.1")
            self.assertEqual(status_of(answer), 503, answer[:80])
            self.assertTrue(answer.endswith(b"\r\n\r\ntoo many connections\n"), answer)
            self.assertIn(b"Retry-After: 1", answer)
            for s in held:
                s.close()
            wait_for(lambda: e.request("GET", "/healthz")[0] == 200, 5, "room again")
        finally:
            for s in held:
                s.close()
            e.close()

    def test_the_per_client_cap_is_checked_in_the_config(self):
        e = WebhookEnv()
        try:
            with open(e.config) as f:
                text = f.read()
            for value in ("0", "100001", "many"):
                with open(e.config, "w") as f:
                    f.write(text.replace("  api_token_file: api.token\n",
                                         "  api_token_file: api.token\n  max_connections_per_client: %s\n" % value))
                r = e.ctl("status", check=False)
                self.assertNotEqual(r.returncode, 0, value)
                self.assertIn("webhook.max_connections_per_client", r.stderr.decode(), value)
        finally:
            e.close()


class AcceptBackoffTest(unittest.TestCase):
    def test_out_of_descriptors_the_server_waits_logs_once_and_serves_open_connections(self):
        e = WebhookEnv()
        kept = None
        try:
            e.start_server()
            e.start_daemon()
            e.wait_http()
            pid = e.daemon.pid
            kept = http.client.HTTPConnection("127.0.0.1", e.http_port, timeout=5)
            kept.request("GET", "/healthz")
            self.assertEqual(kept.getresponse().read(), b"ok\n")
            time.sleep(0.5)  # wait_http's connections are closed
            limit = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            # Room for two more descriptors: the third connection waits in the backlog, and every
            # accept() fails with EMFILE.
            open_now = len(os.listdir("/proc/%d/fd" % pid))
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_now + 2, limit[1]))
            clients = []
            try:
                clients = [e.connect() for _ in range(6)]
                time.sleep(0.5)
                before = e.cpu_seconds()
                time.sleep(2)
                used = e.cpu_seconds() - before
                # Accepting again at once after EMFILE spins a core: about 2 s of these 2.
                self.assertLess(used, 0.5, "out of descriptors, the daemon used %.2f s of CPU in 2 s" % used)
                kept.request("GET", "/healthz")
                self.assertEqual(kept.getresponse().read(), b"ok\n")
                self.assertEqual(e.daemon_log().count("webhook: cannot accept connections"), 1,
                                 e.daemon_log())
            finally:
                for c in clients:
                    c.close()
                resource.prlimit(pid, resource.RLIMIT_NOFILE, limit)
            wait_for(lambda: e.request("GET", "/healthz")[0] == 200, 5, "new connections to be served")
            self.assertIn("webhook: accepting connections again", e.daemon_log())
        finally:
            if kept:
                kept.close()
            e.close()


if __name__ == "__main__":
    unittest.main()
