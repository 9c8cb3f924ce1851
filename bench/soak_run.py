"""The soak with faults, shared by bench/soak (1,000,000 messages) and tests/soak_test.py (100,000).

bulkmaild drains a queue into soak_relay.py, which refuses connections for a few seconds of every
minute, ends sessions with 421, answers 451 to recipients, drops connections in DATA and stalls
past the timeout. Meanwhile bulkmaild is killed -9 at random moments and started again at once,
one-click opt-outs arrive for recipients still queued, and SIGHUP reloads the config. At the end
Soak.check() judges what happened:

  every message sent, or failed with the relay's reply; none left waiting, none lost
  a deferred message tried again within a minute (its backoff is at most 25 s), not after the
    backlog in front of it
  no recipient's message accepted by the relay at or after the moment their opt-out was answered
    200 (the relay stamps a message before it answers 250; the opt-out client stamps the 200 when
    it has read it), but for a message named in flight at a kill (its DATA had ended before it)
  resident memory: no sample of a warmed-up daemon (past its first warm_seconds) after the first
    tenth of the messages above 1.10 x the median of those taken in the next tenth; and the last
    daemon, never killed (kills stop once four fifths of the queue is taken), never above 1.10 x
    its early samples
  duplicates: each one's first copy taken by the relay just before a kill whose restart named it
    (or, SMTP's own race, after one of its deliveries timed out); no more than the kills named
  descriptors and threads: no warmed-up sample (nor the idle daemon at the end) above the first
    warmed-up sample taken, plus eight (the outcome journal's next segment, say) or plus two
    (threads); descriptors leave out the connections of the webhook's clients and to the relay,
    which come and go with the opt-outs and the circuit breaker
  every SIGHUP reloaded, the daemon never died but when killed, and the last one stopped cleanly
  the relay's refusals logged as a few pauses a window, not a line per result

Loopback only: the relay and the webhook listen on 127.0.0.1.
"""
import bisect
import collections
import http.client
import json
import os
import queue
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from ports import free_port  # noqa: E402  (tests/ is not a package)
SECRET = "0123456789abcdef" * 4
ONE_CLICK = b"List-Unsubscribe=One-Click"
DUPLICATE = re.compile(r"message (\d+) was being sent when the last daemon stopped")


def tcp_ports(pid):
    """{socket inode: (local port, remote port)} of a process's TCP sockets (its network namespace's)."""
    ports = {}
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    ports[cols[9]] = (int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16))
        except (OSError, StopIteration):
            pass
    return ports


def proc_sample(pid, connection_ports=()):
    """(RSS KiB, threads, open descriptors) of a live process, or None. Descriptors leave out TCP
    connections served on or made to `connection_ports` (the webhook's clients come and go with the
    opt-outs, the relay's with the circuit breaker): what is left would show a leak."""
    try:
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
        links = []
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                links.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                pass  # closed since the listing
        ports = tcp_ports(pid) if connection_ports else {}
        fds = 0
        for link in links:
            inode = link[len("socket:["):-1] if link.startswith("socket:[") else None
            local, remote = ports.get(inode, (None, None))
            if (local in connection_ports and remote != 0) or remote in connection_ports:
                continue  # a connection, not the listening socket
            fds += 1
    except OSError:
        return None
    rss = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
    if not rss:  # a process killed and not yet reaped has no memory to show
        return None
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    return int(rss.group(1)), threads, fds


class Soak:
    def __init__(self, bin_dir, workdir, messages, connections=20, kill_every=90.0, optouts_per_second=50.0,
                 hup_every=300.0, refuse="5:60", session_421=0.005, rcpt_451=0.01, drop=0.002,
                 stall=0.001, message_timeout=5, warm_seconds=20.0, seed=1, timeout=None, say=print):
        self.bin = bin_dir
        self.dir = workdir
        self.messages = messages
        self.connections = connections
        self.kill_every = kill_every
        self.optout_rate = optouts_per_second
        self.hup_every = hup_every
        self.relay_args = ["--port", str(free_port()), "--refuse", refuse, "--session-421", str(session_421), "--rcpt-451", str(rcpt_451),
                           "--drop", str(drop), "--stall", "%s:%d" % (stall, message_timeout * 3),
                           "--seed", str(seed)]
        self.message_timeout = message_timeout
        self.warm_seconds = warm_seconds
        self.rng = random.Random(seed)
        self.timeout = timeout or (600 + messages / 200)
        self.say = say
        self.db = os.path.join(workdir, "queue.db")
        self.out = os.path.join(workdir, "relay.log")
        self.stats = os.path.join(workdir, "relay.json")
        self.http_port = free_port()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.daemon = None
        self.lives = []          # per daemon started: {"log", "started", "killed"}
        self.unexpected = []     # (life, exit code, log tail) of a daemon that died on its own
        self.hups = 0
        self.samples = []        # (life, age s, accepted so far, rss KiB, threads, fds)
        self.base = None         # (threads, fds) of the first daemon's first warmed-up sample
        self.deliveries = []     # (MAIL FROM time, accepted time, recipient) from the relay
        self.reached = 0         # the highest recipient number among them
        self.opted = {}          # address -> time its one-click's 200 was read
        self.optout_answers = collections.Counter()
        self.finished_at = None
        self.idle = None
        self.final_exit = None
        self.relay = None

    # --- setting up -------------------------------------------------------------------------

    def address(self, i):
        return "r%d@d%d.soak.example" % (i, i % 7)

    def ctl(self, *args, **kw):
        return subprocess.run([os.path.join(self.bin, "bulkmailctl"), "--config", self.config, *args],
                              check=True, capture_output=True, **kw).stdout

    def connection_ports(self):
        return (self.http_port, self.relay_port)

    def prepare(self, relay_port):
        self.relay_port = relay_port
        with open(os.path.join(self.dir, "unsubscribe.key"), "w") as f:
            f.write(SECRET + "\n")
        os.chmod(os.path.join(self.dir, "unsubscribe.key"), 0o600)
        self.config = os.path.join(self.dir, "bulkmail.yaml")
        self.write_config(relay_port)
        subprocess.run([os.path.join(self.bin, "bulkmaild"), "--config", self.config, "--check"], check=True,
                       capture_output=True)
        csv = os.path.join(self.dir, "queue.csv")
        with open(csv, "w") as f:
            f.write("email,first_name,headline,body\n")
            for i in range(self.messages):
                f.write("%s,Pat,Your plan is changing,Details inside.\n" % self.address(i))
        t0 = time.time()
        self.ctl("import", "--category", "customer-update", "--campaign", "soak", csv)
        self.say("imported %d messages in %.0f s" % (self.messages, time.time() - t0))
        # One-click links for every tenth recipient, opted out as the queue reaches them.
        self.candidates = list(range(5, self.messages, 10))
        addresses = "".join(self.address(i) + "\n" for i in self.candidates).encode()
        self.paths = {}
        for line in self.ctl("unsubscribe-link", "--category", "customer-update", "-", input=addresses).decode().splitlines():
            address, link = line.split("\t")
            self.paths[address] = "/" + link.split("/", 3)[3]

    def write_config(self, relay_port):
        # Written whole and renamed: a SIGHUP never reads half a file.
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"""database: queue.db
templates: {ROOT}/templates
sender:
  organization: Example Telecom, Inc.
  postal_address: 100 Example Parkway, Cary, NC 27513, USA
  from: "Example Telecom <updates@mail.example.com>"
smtp:
  url: smtp://127.0.0.1:{relay_port}
  max_connections: {self.connections}
  connect_timeout_seconds: 2
  message_timeout_seconds: {self.message_timeout}
throttle:
  messages_per_second: 100000
retry:
  initial_delay_seconds: 2
  max_delay_seconds: 20
  max_attempts: 10
unsubscribe:
  url: https://mail.example.com/unsubscribe
  secret_file: unsubscribe.key
webhook:
  listen: 127.0.0.1:{self.http_port}
categories:
  customer-update: {{ template: customer-update, description: "Updates about your services" }}
""")
        os.replace(tmp, self.config)

    # --- the daemon ---------------------------------------------------------------------------

    def start_daemon(self):
        n = len(self.lives)
        log_path = os.path.join(self.dir, "daemon%03d.log" % n)
        with open(log_path, "wb") as log:
            self.daemon = subprocess.Popen([os.path.join(self.bin, "bulkmaild"), "--config", self.config],
                                           stdout=log, stderr=log)
        self.lives.append({"log": log_path, "started": time.time(), "killed": None, "pid": self.daemon.pid})

    def webhook_up(self, timeout=1.0):
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
            c.request("GET", "/healthz")
            r = c.getresponse()
            r.read()
            c.close()
            return r.status == 200
        except OSError:
            return False

    def wait_up(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.daemon.poll() is not None:
                return False
            if self.webhook_up():
                return True
            time.sleep(0.05)
        return False

    def log_tail(self, life, lines=20):
        with open(self.lives[life]["log"], errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def chaos(self):
        """Kills -9 (then starts again at once) and SIGHUPs on one timeline, never within 5 s of
        each other, so that a SIGHUP always meets a daemon that has its handler in place."""
        next_kill = time.time() + self.rng.uniform(0.5, 1.5) * self.kill_every
        next_hup = time.time() + self.hup_every
        while not self.stop.wait(0.2):
            now = time.time()
            if self.daemon.poll() is not None:
                life = len(self.lives) - 1
                self.unexpected.append((life, self.daemon.returncode, self.log_tail(life)))
                self.say("bulkmaild exited on its own (%s); starting it again" % self.daemon.returncode)
                self.start_daemon()
                self.wait_up()
                continue
            if now >= next_hup and now < next_kill - 5:
                if now - self.lives[-1]["started"] >= 5 and self.webhook_up():
                    self.daemon.send_signal(signal.SIGHUP)
                    self.hups += 1
                    next_hup = now + self.hup_every
            elif now >= next_hup:
                next_hup = next_kill + 5
            if now >= next_kill and self.accepted() >= 0.8 * self.messages:
                next_kill = float("inf")  # the last fifth without kills: one long life, for leaks
            if now >= next_kill:
                self.daemon.kill()
                self.daemon.wait()
                self.lives[-1]["killed"] = time.time()
                self.start_daemon()
                next_kill = time.time() + self.rng.uniform(0.5, 1.5) * self.kill_every
                self.wait_up()

    # --- opt-outs -----------------------------------------------------------------------------

    def accepted(self):
        with self.lock:
            return len(self.deliveries)

    def frontier(self):
        """How far through the queue the relay has got: the highest recipient number it took (the
        queue goes in id order; the count taken lags it by every opt-out and retry)."""
        with self.lock:
            return self.reached

    def optouts(self):
        """One-click opt-outs at optout_rate a second for recipients a little ahead of what the relay
        has accepted (so most are still queued, some already claimed). One that is not answered 200
        (the daemon was down, or the answer was an error) is tried again."""
        todo = queue.Queue()
        unused = list(self.candidates)

        def worker():
            while not self.stop.is_set():
                try:
                    address = todo.get(timeout=0.2)
                except queue.Empty:
                    continue
                body = ONE_CLICK
                try:
                    c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
                    c.request("POST", self.paths[address], body=body,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
                    r = c.getresponse()
                    r.read()
                    answered = time.time()
                    c.close()
                    status = r.status
                except (OSError, http.client.HTTPException) as e:
                    status = type(e).__name__
                with self.lock:
                    self.optout_answers[status] += 1
                    if status == 200:
                        self.opted.setdefault(address, answered)
                if status != 200:
                    time.sleep(0.5)
                    todo.put(address)

        workers = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
        for w in workers:
            w.start()
        t = time.time()
        while not self.stop.is_set() and unused:
            t += 1.0 / self.optout_rate
            delay = t - time.time()
            if delay > 0:
                self.stop.wait(delay)
            ahead = self.frontier() + self.rng.randint(50, 2000)
            k = bisect.bisect_left(unused, ahead)
            if k == len(unused):
                continue
            todo.put(self.address(unused.pop(k)))
        for w in workers:
            w.join()

    # --- watching -----------------------------------------------------------------------------

    def read_relay(self, f):
        new = []
        while True:
            pos = f.tell()
            line = f.readline()
            if not line.endswith("\n"):  # nothing more, or a line the relay is still writing
                f.seek(pos)
                break
            a, b, rcpt = line.split()
            new.append((float(a), float(b), rcpt))
        reached = max((int(r[1:r.index("@")]) for _, _, r in new), default=0)
        with self.lock:
            self.deliveries.extend(new)
            self.reached = max(self.reached, reached)

    def states(self):
        db = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=30)
        try:
            return dict(db.execute("SELECT state, count(*) FROM messages GROUP BY state").fetchall())
        finally:
            db.close()

    def watch(self):
        """Samples the daemon every second and the queue every five; returns when every message
        is in a final state (or the run's time is up)."""
        deadline = time.time() + self.timeout
        last_states = 0
        last_report = time.time()
        # Every sample goes to samples.csv as it is taken, for a look at memory's shape over a
        # daemon's life (kept with --keep; a run stopped early keeps what it had).
        with open(self.out) as f, open(os.path.join(self.dir, "samples.csv"), "w") as samples_csv:
            samples_csv.write("life,age_s,accepted,rss_kib,threads,fds\n")
            while time.time() < deadline:
                time.sleep(1)
                if self.relay.poll() is not None:
                    raise RuntimeError("the relay exited (%s)" % self.relay.returncode)
                self.read_relay(f)
                life = len(self.lives) - 1
                pid = self.lives[life]["pid"]
                sample = proc_sample(pid, self.connection_ports())
                if sample and self.daemon.poll() is None:
                    age = time.time() - self.lives[life]["started"]
                    row = (life, age, self.accepted()) + sample
                    self.samples.append(row)
                    samples_csv.write(",".join("%.1f" % v if isinstance(v, float) else str(v) for v in row) + "\n")
                    samples_csv.flush()
                    if self.base is None and age >= self.warm_seconds:
                        self.base = (sample[1], sample[2])
                if time.time() - last_states >= 5:
                    last_states = time.time()
                    states = self.states()
                    waiting = sum(states.get(s, 0) for s in ("queued", "sending", "deferred"))
                    if time.time() - last_report >= 30:
                        last_report = time.time()
                        self.say("%.0f s: %s; relay accepted %d; kills %d; opt-outs answered 200: %d" % (
                            time.time() - self.began, " ".join("%s=%d" % kv for kv in sorted(states.items())),
                            self.accepted(), sum(1 for l in self.lives if l["killed"]), len(self.opted)))
                    if waiting == 0:
                        self.finished_at = time.time()
                        return True
        return False

    # --- the run ------------------------------------------------------------------------------

    def run(self):
        open(self.out, "w").close()
        relay = self.relay = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "soak_relay.py"), "--out",
                                               self.out, "--stats", self.stats] + self.relay_args,
                                              stdout=subprocess.PIPE)
        try:
            line = relay.stdout.readline().decode()
            assert line.startswith("ready"), "the relay did not start: %r" % line
            self.prepare(int(line.split()[1]))
            self.began = time.time()
            self.start_daemon()
            if not self.wait_up():
                raise RuntimeError("bulkmaild did not start:\n" + self.log_tail(0))
            threads = [threading.Thread(target=self.chaos), threading.Thread(target=self.optouts)]
            for t in threads:
                t.start()
            try:
                done = self.watch()
            finally:
                self.stop.set()
                for t in threads:
                    t.join()
            # The daemon idle with the queue done: what it holds now is what it keeps.
            time.sleep(2)
            self.idle = proc_sample(self.daemon.pid, self.connection_ports())
            self.daemon.terminate()
            self.final_exit = self.daemon.wait(60)
        finally:
            if self.daemon and self.daemon.poll() is None:
                self.daemon.kill()
                self.daemon.wait()
            relay.terminate()
            relay.wait(30)
            relay.stdout.close()
        with open(self.out) as f:
            self.deliveries = []
            self.read_relay(f)
        with open(self.stats) as f:
            self.relay_stats = json.load(f)
        return done

    # --- judging ------------------------------------------------------------------------------

    def check(self):
        """[(what, figure, ok)] for every promise; ok is None for a figure that only informs."""
        rows = []
        elapsed = (self.finished_at or time.time()) - self.began
        rows.append(("messages", "%d in %.0f s (%.0f msg/s)" % (self.messages, elapsed, self.messages / elapsed), None))
        rows.append(("relay", ", ".join("%s %d" % kv for kv in sorted(self.relay_stats.items())), None))
        for fault in ("refusal windows", "421 session", "451 recipient", "dropped in DATA", "stalled"):
            rows.append(("relay fault happened: " + fault, self.relay_stats.get(fault, 0),
                         self.relay_stats.get(fault, 0) > 0))
        kills = [l for l in self.lives if l["killed"]]
        rows.append(("kills -9", len(kills), len(kills) > 0))
        rows.append(("died on their own", "%d%s" % (len(self.unexpected), "".join(
            "\n  life %d exit %s:\n%s" % u for u in self.unexpected)), not self.unexpected))

        db = sqlite3.connect(self.db, timeout=30)
        states = dict(db.execute("SELECT state, count(*) FROM messages GROUP BY state").fetchall())
        rows.append(("messages in the queue", sum(states.values()), sum(states.values()) == self.messages))
        rows.append(("final states", " ".join("%s=%d" % kv for kv in sorted(states.items())),
                     set(states) <= {"sent", "failed", "suppressed"}))
        failed = db.execute("SELECT coalesce(last_reply_code, 0), coalesce(last_reply, ''), count(*) FROM messages "
                            "WHERE state = 'failed' GROUP BY 1, 2 ORDER BY 3 DESC").fetchall()
        rows.append(("failed with the relay's reply", "; ".join("%d %s x%d" % f for f in failed[:5]) or "none failed",
                     all(code >= 400 or (reply and not reply.startswith("not sent")) for code, reply, _ in failed)))
        # From each deferral to the message's next outcome: its backoff (2 to 20 s, +-25%) and
        # then its wait for a claim, which must not be the backlog's length.
        waits, deferred_at = [], {}
        for message, at, kind in db.execute(
                "SELECT message, at, type FROM events WHERE message IN (SELECT message FROM events "
                "WHERE type = 'deferred') AND type <> 'suppression-added' ORDER BY id"):
            if message in deferred_at:
                waits.append((at - deferred_at.pop(message)) / 1000.0)
            if kind == "deferred":
                deferred_at[message] = at
        waits.sort()
        if waits:
            rows.append(("from a deferral to the next try", "median %.1f s, p99 %.1f s, largest %.1f s "
                         "(%d; %d never tried again)" % (
                             waits[len(waits) // 2], waits[int(len(waits) * 0.99)], waits[-1], len(waits),
                             len(deferred_at)), waits[-1] <= 60 and not deferred_at))
        else:
            rows.append(("from a deferral to the next try", "%d deferrals, none tried again" % len(deferred_at),
                         not deferred_at))
        by_id = dict(db.execute("SELECT id, recipient FROM messages").fetchall())
        state_of = dict(db.execute("SELECT recipient, state FROM messages").fetchall())
        suppressed_addresses = {a for (a,) in db.execute(
            "SELECT address FROM suppressions WHERE category IN ('', 'customer-update')")}
        # Recipients a delivery of whose timed out: the relay may have taken the message after
        # the daemon gave up on it (SMTP's own race, not a kill's).
        timed_out = {a for (a,) in db.execute(
            "SELECT DISTINCT address FROM events WHERE type = 'deferred' AND "
            "(detail LIKE '%timed out%' OR detail LIKE '%Timeout%')")}
        db.close()

        delivered = collections.Counter(r for _, _, r in self.deliveries)
        sent = {r for r, s in state_of.items() if s == "sent"}
        lost = sent - set(delivered)
        rows.append(("sent but never accepted by the relay", len(lost), not lost))

        # The restarted daemon names each message that was being handed over when it was killed.
        # A duplicate is accounted for when its first copy was taken by the relay shortly before
        # a kill (within the message timeout) whose restart named it.
        in_flight, named, kills = [], set(), []
        for before, life in zip(self.lives, self.lives[1:]):
            with open(life["log"], errors="replace") as f:
                ids = [int(m.group(1)) for m in DUPLICATE.finditer(f.read())]
            in_flight.append(len(ids))
            names = {by_id[i] for i in ids if i in by_id}
            named |= names
            kills.append((before["killed"], names))
        first = {}
        for _, accepted, r in self.deliveries:
            first.setdefault(r, accepted)
        extra = sum(n - 1 for n in delivered.values() if n > 1)
        duplicated = {r for r, n in delivered.items() if n > 1}
        at_a_kill = {r for r in duplicated if any(
            killed and r in names and 0 <= killed - first[r] <= self.message_timeout + 2 for killed, names in kills)}
        after_timeout = (duplicated - at_a_kill) & timed_out
        rows.append(("in flight at each kill (named at restart)", "sum %d, largest %d of %d connections" % (
            sum(in_flight), max(in_flight, default=0), self.connections),
            max(in_flight, default=0) <= self.connections))
        rows.append(("duplicates", "%d (%d recipients; %d taken just before a kill that named them, %d after a "
                     "timeout)" % (extra, len(duplicated), len(at_a_kill), len(after_timeout)),
                     extra - len(after_timeout) <= sum(in_flight)))
        unexplained = duplicated - at_a_kill - after_timeout
        rows.append(("duplicates neither in flight at a kill nor after a timeout", len(unexplained), not unexplained))
        unsent = {r for r in delivered if state_of.get(r) != "sent"}
        rows.append(("accepted by the relay but not sent", "%d (each named in flight at a kill: %s)" % (
            len(unsent), not (unsent - named)), not (unsent - named)))

        late = []
        last = collections.defaultdict(float)
        for _, accepted, r in self.deliveries:
            last[r] = max(last[r], accepted)
        for address, answered in self.opted.items():
            # A message in flight at a kill may be stamped by a lagging relay after the restarted
            # daemon answered: its DATA had ended before the kill. Those are counted, not failed.
            if address in last and last[address] >= answered and address not in named:
                late.append((address, last[address] - answered))
        margins = [answered - last[a] for a, answered in self.opted.items() if a in last]
        rows.append(("one-click opt-outs answered 200", "%d (answers: %s)" % (
            len(self.opted), ", ".join("%s %d" % (k, v) for k, v in sorted(self.optout_answers.items(), key=str))),
            len(self.opted) > 0))
        rows.append(("accepted by the relay after the opt-out's 200", "%d%s" % (len(late), (
            "; smallest margin before the 200 %.3f s" % min(margins)) if margins else ""), not late))
        unrecorded = [a for a in self.opted if a not in suppressed_addresses]
        rows.append(("opt-outs answered 200 but not suppressed", len(unrecorded), not unrecorded))
        wrong = [a for a in self.opted if state_of.get(a) not in ("suppressed", "sent")
                 or (state_of.get(a) == "sent" and a not in last)]
        rows.append(("opted-out messages neither suppressed nor sent before", len(wrong), not wrong))

        reloaded = pauses = lines = 0
        for life in self.lives:
            with open(life["log"], errors="replace") as f:
                text = f.read()
            reloaded += text.count("reloaded: new throttle")
            pauses += text.count("dispatch paused: the relay is not accepting mail")
            lines += text.count("\n")
        rows.append(("SIGHUP reloads", "%d sent, %d reloaded" % (self.hups, reloaded),
                     self.hups > 0 and reloaded == self.hups))
        # The relay refusing connections pauses dispatch a few times a window (the probe's delay
        # doubles), not once per result.
        windows = self.relay_stats.get("refusal windows", 0)
        rows.append(("pauses logged for the relay", "%d (%d refusal windows, %d daemons started)" % (
            pauses, windows, len(self.lives)), pauses <= 10 * windows + len(self.lives)))
        rows.append(("log lines", "%d (%.1f per 1,000 messages)" % (lines, 1000.0 * lines / self.messages), None))

        warm = [s for s in self.samples if s[1] >= self.warm_seconds]
        tenth = self.messages // 10
        reference = [s[3] for s in warm if tenth <= s[2] < 2 * tenth]
        later = [s[3] for s in warm if s[2] >= tenth]
        if reference and later:
            ref = statistics.median(reference)
            rows.append(("RSS of a warm daemon after %d messages" % tenth, "median %.1f MB, largest %.1f MB (%.2fx)" % (
                statistics.median(later) / 1024, max(later) / 1024, max(later) / ref), max(later) <= 1.10 * ref))
        else:
            rows.append(("RSS of a warm daemon after %d messages" % tenth, "too few samples (%d, %d)" % (
                len(reference), len(later)), False))
        # The last daemon, never killed (kills stop for the last fifth): a slow leak shows here.
        final = [s[3] for s in warm if s[0] == len(self.lives) - 1]
        if len(final) >= 10:
            start = statistics.median(final[:len(final) // 3])
            rows.append(("RSS of the last daemon through its life", "%.1f MB early, largest %.1f MB (%.2fx, %d samples)" % (
                start / 1024, max(final) / 1024, max(final) / start, len(final)), max(final) <= 1.10 * start))
        else:
            rows.append(("RSS of the last daemon through its life", "too few samples (%d)" % len(final), False))
        base_threads, base_fds = self.base or (0, 0)
        if warm:
            threads = [s[4] for s in warm]
            fds = [s[5] for s in warm]
            rows.append(("threads of a warm daemon", "%d to %d (first warm sample %d)" % (
                min(threads), max(threads), base_threads),
                         max(threads) <= base_threads + 2))
            rows.append(("descriptors of a warm daemon, connections aside", "%d to %d (first warm sample %d)" % (
                min(fds), max(fds), base_fds), max(fds) <= base_fds + 8))
        rows.append(("the last daemon stopped by SIGTERM", "exit %s" % self.final_exit, self.final_exit == 0))
        rows.append(("idle at the end: sampled", self.idle is not None, self.idle is not None))
        if self.idle:
            rows.append(("idle at the end: threads, descriptors", "%d, %d" % (self.idle[1], self.idle[2]),
                         self.idle[1] <= base_threads + 2 and self.idle[2] <= base_fds + 8))
        return rows


def print_rows(rows, say=print):
    width = max(len(r[0]) for r in rows)
    for what, figure, ok in rows:
        mark = "" if ok is None else ("ok  " if ok else "FAIL")
        say("%-4s %-*s  %s" % (mark, width, what, figure))
    return all(ok is not False for _, _, ok in rows)
