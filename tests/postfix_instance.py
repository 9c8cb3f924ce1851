"""A private, throwaway Postfix instance on loopback: the relay that bulkmail's end-to-end tests
send through, so that the bounces bulkmail reads are the ones a real MTA writes.

bulkmaild relays to smtp://127.0.0.1:PORT. What Postfix then does depends on the recipient's
domain (transport_maps):

  hard_domains    error(8) with "5.1.1 user unknown": Postfix bounces the recipient at once and
                  its bounce(8) daemon mails a DSN (multipart/report, Status: 5.1.1) to the
                  envelope sender.
  soft_domains    error(8) in its "retry" personality with "4.2.2 mailbox full": the recipient
                  stays deferred; Postfix mails a "delayed" DSN (Action: delayed) once
                  delay_warning_time has passed, and a "failed" one when the message expires
                  (maximal_queue_lifetime, or expire() at once).
  accept_domains  discard(8): delivered as far as Postfix is concerned, no DSN.
  bounce_domain   pipe(8) running pipe_argv as pipe_user: the VERP return paths
                  (b-TOKEN@bounce_domain), fbl@bounce_domain and anything else there. This is
                  where the DSNs above arrive, as they would at bulkmail's bounce intake.
  anything else   discard(8), like accept_domains, so that a stray address never leaves the
                  machine (there is no smtp(8) client in this instance at all).

Everything lives under the workdir the test gives (config, queue, data, maillog); the machine's
own Postfix (/etc/postfix, /var/spool/postfix, a running master) is never changed, and is read
only where every Postfix command reads it: the shared programs in /usr/sbin and
/usr/lib/postfix, and /etc/postfix/postfix-files (meta_directory), from which "postfix start"
creates this instance's queue directories. The workdir's parent directories must be searchable
by the postfix user (the master opens its lock file as that user, by absolute path); start()
says so rather than fail obscurely.

Requirements: root (Postfix's master must start as root; as root the commands also accept a
non-default "-c DIR" without it being listed in alternate_config_directories of
/etc/postfix/main.cf, which need not even exist), and Debian's postfix package installed
(scripts/setup does it with the "No configuration" debconf answer, so the machine's own
instance is not set up or started). Python 3.11 standard library only.

Usage:

    with PostfixInstance(tmp + "/relay", bounce_domain="bounces.example.test",
                         pipe_argv=[sys.executable, "/path/intake.py",
                                    "--recipient", "${recipient}"]) as relay:
        ...  # send through 127.0.0.1:relay.port
        relay.flush()
        print(relay.log_text())

The pipe command:
  * gets the message on stdin, exactly as queued, with one "Return-Path: <SENDER>" line prepended
    (flags=R). A DSN's envelope sender is null, so DSNs arrive with "Return-Path: <>"
    (null_sender= is set empty; pipe(8)'s default would write <MAILER-DAEMON>). No From_ line,
    no ">From " quoting, no dot-stuffing: the bytes are those a bounce parser would see in a
    mailbox.
  * gets the envelope recipient only through its argv: pipe(8) expands the Postfix macros
    ${recipient}, ${original_recipient}, ${sender} (empty for a DSN), ${queue_id}, ${size}, ...
    in pipe_argv; write $$ for a literal $ (an unknown "$x" is a configuration error that
    defers every delivery). One recipient per run (bouncepipe_destination_recipient_limit =
    1), so ${recipient} is always exactly one argument. The q flag quotes an odd local part
    RFC 5322 style ("john doe"@domain). Unlike local(8), pipe(8) sets no ORIGINAL_RECIPIENT,
    SENDER or RECIPIENT environment variables: the environment is MAIL_CONFIG, LANG=C,
    PATH=/usr/bin:/bin (and TZ when set), nothing else.
  * runs as pipe_user (default nobody; pipe(8) refuses root and the postfix user), in
    pipe_directory (default /), killed after pipe_time_limit seconds.
  * reports by exit status, sysexits.h style: 0 delivered; 75 (EX_TEMPFAIL) and 71 (EX_OSERR)
    defer, and the message is tried again a second later, or at once on flush(); any other
    non-zero status (1, 64, 65, 69, 70, 73, 74, 78 seen) bounces it as undeliverable (5.x.x;
    for a DSN that is a double bounce, which notify_classes drops here). The start of its
    output goes into the log line and the delivery status ("temporary failure. Command output:
    ..."); output starting with an enhanced status code (4.x.x/5.x.x) overrides the exit status.
  The caller makes the command, its interpreter and everything it writes (a database and its
  directory, for SQLite also the -wal/-journal files it creates beside it) reachable and
  writable by pipe_user: a temporary directory from tempfile.mkdtemp() is 0700 root, so chmod it
  0755 (which the workdir's parents need anyway), and the directory the command writes 0777, or
  chown it to nobody.

Timing (measured on a 2-core machine, Postfix 3.7.11; Postfix's time granularity is 1 s):
  * hard: the failed DSN reaches the pipe about 0.1 s after the SMTP transaction ends.
  * soft, delayed: also about 0.1 s. With delay_warning_time = 1s the warning is due at the end
    of the very first delivery attempt (qmgr allows 1 s of slack when it compares).
  * soft, failed: expire() then flush(): about 0.1 s. Without them, at the first delivery
    attempt after soft_lifetime (maximal_queue_lifetime, default 1h), i.e. at most about 1 s
    late: queue_run_delay, minimal_backoff_time and maximal_backoff_time are all 1 s.
  * start() about 2-3 s (postfix start checks the installation first), stop() well under 1 s.
Postfix caps bounce_queue_lifetime (the life of DSNs that cannot be delivered, 1h here) at
maximal_queue_lifetime: with a short soft_lifetime, a DSN the pipe keeps deferring is dropped
after that long too (the log warns "adjusting bounce_queue_lifetime").

What Postfix writes (bounce(8), default templates): "Undelivered Mail Returned to Sender" or
"Delayed Mail (still being retried)", From: MAILER-DAEMON@<myhostname>, Auto-Submitted:
auto-replied, multipart/report; report-type=delivery-status with a text/plain notification, a
message/delivery-status part (Reporting-MTA: dns; <myhostname>, X-Postfix-Queue-ID,
X-Postfix-Sender, Arrival-Date; per recipient Final-Recipient: rfc822; ADDR, Original-Recipient,
Action, Status, Diagnostic-Code: X-Postfix; <text>, and for delayed Will-Retry-Until), then the
returned message (message/rfc822 for failed, text/rfc822-headers for delayed). A soft
recipient that expires is reported with Action: failed but keeps its Status: 4.2.2. One
message to several recipients gets one DSN per kind (failed, delayed) naming only those
recipients. With these short times the delayed notice's text says "for more than 0 hour(s)"
and "until it is 0 day(s) old", and bounce(8) logs warnings about that ("zero result in delay
template conversion"); the machine-readable part is unaffected.
"""

import atexit
import errno
import grp
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import time
import weakref

from ports import free_port

POSTFIX = "/usr/sbin/postfix"
POSTQUEUE = "/usr/sbin/postqueue"
POSTCONF = "/usr/sbin/postconf"
POSTSUPER = "/usr/sbin/postsuper"

# The master.cf service name of the pipe(8) transport for bounce_domain. Its main.cf overrides
# are named after it (bouncepipe_destination_recipient_limit, ...).
PIPE_SERVICE = "bouncepipe"

# R: prepend "Return-Path: <sender>", as a mailbox delivery would; q: quote odd local parts in
# the expanded ${recipient}. Deliberately not F (From_ line), > (">From " quoting) or . (dot
# stuffing): the command reads the message as it was queued.
PIPE_FLAGS = "Rq"


# Instances started and not yet stopped. A test process that ends without stopping one (an
# exception outside a with block, sys.exit) still takes its master down on the way out; only a
# SIGKILLed test process leaves one behind ("postfix -c WORKDIR/conf stop" ends it).
_running = weakref.WeakSet()


@atexit.register
def _stop_all():
    for instance in list(_running):
        instance.stop()


def available() -> bool:
    """True when a private instance can run here: root, and Postfix's programs installed."""
    return (os.geteuid() == 0
            and all(os.access(p, os.X_OK) for p in (POSTFIX, POSTQUEUE, POSTCONF, POSTSUPER)))


def _alive(pid: int) -> bool:
    """True while pid is a running process. A zombie counts as gone: the master daemonizes, so
    its parent is init, and in some containers init never reaps it."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    # "pid (comm) S ...": the state follows the last ')', comm may contain anything.
    return stat[stat.rindex(")") + 2] not in "ZX"


def _master_cf_arg(arg: str) -> str:
    """One pipe_argv element as master.cf wants it: Postfix 3.0+ takes "{ ... }" around an
    argument with whitespace. Postfix macros ($name, ${name}, $$) are left for pipe(8)."""
    if any(c in re.sub(r"\$\{\w+\}", "", arg) for c in "{}\n\r") or arg == "":
        raise ValueError("pipe_argv element cannot be written to master.cf: %r" % arg)
    if any(c.isspace() for c in arg):
        return "{ %s }" % arg
    return arg


class PostfixError(RuntimeError):
    pass


class PostfixInstance:
    """One private Postfix instance under workdir (which it creates and owns: keep other files
    elsewhere). Start with start() or a with block; stop() always tears it down."""

    def __init__(self, workdir: str, *, bounce_domain: str, pipe_argv: list[str],
                 pipe_user: str = "nobody",
                 hard_domains=("hard.example.test",), soft_domains=("soft.example.test",),
                 accept_domains=("ok.example.test",),
                 port: int | None = None,
                 hard_reply: str = "5.1.1 user unknown",
                 soft_reply: str = "4.2.2 mailbox full",
                 delay_warning: str = "1s",
                 soft_lifetime: str = "1h",
                 pipe_directory: str = "/",
                 pipe_time_limit: int = 60,
                 pipe_concurrency: int | None = None,
                 myhostname: str = "relay.example.test"):
        """workdir: created if missing; holds conf/, spool/, data/ and maillog.
        bounce_domain: every address at it goes to pipe_argv (run as pipe_user, in
        pipe_directory, killed after pipe_time_limit s, at most pipe_concurrency at once; by
        default up to 10, the default_process_limit here).
        hard_reply / soft_reply: the "X.Y.Z text" that error(8) reports for hard_domains and
        soft_domains; the code must start with 5 and 4 respectively.
        delay_warning: delay_warning_time, when a soft recipient's "delayed" DSN is due ("0"
        turns it off). soft_lifetime: maximal_queue_lifetime, when it bounces for good.
        port: the smtpd port on 127.0.0.1; by default a free one, picked at start()."""
        if not pipe_argv:
            raise ValueError("pipe_argv is empty")
        if not os.path.isabs(pipe_argv[0]):
            raise ValueError("pipe_argv[0] must be an absolute path (pipe(8) does not search PATH)")
        try:
            uid = pwd.getpwnam(pipe_user).pw_uid
        except KeyError:
            raise ValueError("pipe_user %r does not exist" % pipe_user) from None
        if uid == 0 or pipe_user == "postfix":
            raise ValueError("pipe(8) refuses to run commands as root or as the postfix user")
        if not hard_reply.startswith("5.") or not soft_reply.startswith("4."):
            raise ValueError("hard_reply must start with 5.x.x and soft_reply with 4.x.x")
        self.workdir = os.path.abspath(workdir)
        self.bounce_domain = bounce_domain.lower()
        self.pipe_argv = list(pipe_argv)
        self.pipe_user = pipe_user
        self.hard_domains = tuple(d.lower() for d in hard_domains)
        self.soft_domains = tuple(d.lower() for d in soft_domains)
        self.accept_domains = tuple(d.lower() for d in accept_domains)
        self.hard_reply = hard_reply
        self.soft_reply = soft_reply
        self.delay_warning = delay_warning
        self.soft_lifetime = soft_lifetime
        self.pipe_directory = pipe_directory
        self.pipe_time_limit = pipe_time_limit
        self.pipe_concurrency = pipe_concurrency
        self.myhostname = myhostname
        self._fixed_port = port
        self.port = port or 0
        self.config_dir = os.path.join(self.workdir, "conf")
        self.queue_dir = os.path.join(self.workdir, "spool")
        self.data_dir = os.path.join(self.workdir, "data")
        self.maillog = os.path.join(self.workdir, "maillog")
        self._master_pid = None
        for d in self.hard_domains + self.soft_domains + self.accept_domains + (self.bounce_domain,):
            if not re.fullmatch(r"[a-z0-9.-]+", d):
                raise ValueError("not a plain domain name: %r" % d)

    # -- the public interface ------------------------------------------------------------------

    @property
    def relay_url(self) -> str:
        """What bulkmaild's relay setting should say."""
        return "smtp://127.0.0.1:%d" % self.port

    def start(self):
        """Writes the configuration and starts the master; returns once smtpd listens. With no
        port given, a port taken by someone else between the pick and the bind is retried with
        a new pick (up to 3 times)."""
        attempts = 1 if self._fixed_port else 3
        try:
            for attempt in range(attempts):
                self.port = self._fixed_port or free_port()
                self._write_config()
                try:
                    self._postfix("start", timeout=60)
                except PostfixError:
                    self._kill_master()
                    if attempt + 1 < attempts and self._bind_failed():
                        continue
                    raise
                break
            self._master_pid = self._read_master_pid()
            _running.add(self)
            self._wait_listening(timeout=10)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stops the instance: "postfix stop" (which waits up to 5 s and then kills the master's
        process group), then SIGKILL to the process group if the master is somehow still there.
        Safe to call more than once, and after a failed start()."""
        pid = self._master_pid or self._read_master_pid()
        if pid and _alive(pid):
            try:
                self._postfix("stop", timeout=20)
            except (PostfixError, subprocess.TimeoutExpired):
                pass
        self._kill_master(pid)
        self._master_pid = None
        _running.discard(self)

    def flush(self):
        """postqueue -f: every deferred message gets a delivery attempt now."""
        self._run([POSTQUEUE, "-c", self.config_dir, "-f"], timeout=20)

    def expire(self, queue_ids: list[str]):
        """postsuper -e: each message is returned to its sender, as if maximal_queue_lifetime
        had passed, at its next delivery attempt (call flush() for that to be now). This is the
        quick way to a soft recipient's final "failed" DSN."""
        if queue_ids:
            self._run([POSTSUPER, "-c", self.config_dir] + [a for q in queue_ids
                                                             for a in ("-e", q)], timeout=20)

    def queue(self) -> list[dict]:
        """What is still queued, as postqueue -j reports it: one dict a message with queue_id,
        queue_name (active, deferred, hold, ...), sender, and recipients (address and, once
        deferred, delay_reason)."""
        out = self._run([POSTQUEUE, "-c", self.config_dir, "-j"], timeout=20)
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def queue_ids(self) -> list[str]:
        """The queue ids of what is still queued."""
        return [m["queue_id"] for m in self.queue()]

    def log_text(self) -> str:
        """The instance's log so far (maillog_file, written by postlogd). Lines reach it
        asynchronously, a few milliseconds after the event."""
        try:
            with open(self.maillog, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 20.0) -> re.Match:
        """Polls the log until the regular expression matches a line (re.MULTILINE); returns the
        match, or raises TimeoutError with the log's tail."""
        rx = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text())
            if m:
                return m
            if time.monotonic() >= deadline:
                raise TimeoutError("no log line matching %r within %.0f s; log tail:\n%s"
                                   % (pattern, timeout, self.log_text()[-4000:]))
            time.sleep(0.1)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- configuration --------------------------------------------------------------------------

    def _main_cf(self) -> str:
        settings = [
            # Today's defaults, without backwards-compatibility warnings in the log.
            ("compatibility_level", "3.6"),
            # This instance's own directories. config_directory is not a main.cf setting: it is
            # the -c DIR every command here gets.
            ("queue_directory", self.queue_dir),
            ("data_directory", self.data_dir),
            ("mail_owner", "postfix"),
            ("setgid_group", "postdrop"),
            # A single, non-multi instance: postfix(1) must not go looking for siblings.
            ("multi_instance_enable", "no"),
            ("multi_instance_directories", ""),
            # Logging to a file through postlogd(8), not syslog (there may be none). The file
            # must sit under one of maillog_file_prefixes.
            ("maillog_file", self.maillog),
            ("maillog_file_prefixes", self.workdir),
            ("syslog_name", "postfix-bulkmail-test"),
            # Names: nothing here is delivered locally, and nothing is resolved through DNS.
            ("myhostname", self.myhostname),
            ("mydomain", self.myhostname.partition(".")[2] or self.myhostname),
            ("myorigin", "$myhostname"),
            ("mydestination", ""),
            ("local_recipient_maps", ""),
            ("local_transport", "error:5.1.1 local delivery is disabled on this test relay"),
            ("alias_maps", ""),
            ("alias_database", ""),
            ("biff", "no"),
            ("append_dot_mydomain", "no"),
            ("smtpd_peername_lookup", "no"),
            # Loopback only; anything from 127.0.0.0/8 may relay anywhere.
            ("inet_interfaces", "127.0.0.1"),
            ("inet_protocols", "ipv4"),
            ("mynetworks", "127.0.0.0/8"),
            ("smtpd_relay_restrictions", "permit_mynetworks, reject"),
            ("smtpd_recipient_restrictions", ""),
            ("smtpd_reject_unlisted_recipient", "no"),
            ("smtpd_error_sleep_time", "0s"),
            ("in_flow_delay", "0s"),
            # Where each recipient goes (see the module comment). Unlisted domains are discarded
            # rather than sent anywhere: there is no smtp(8) service in master.cf.
            ("transport_maps", "texthash:" + os.path.join(self.config_dir, "transport")),
            ("default_transport", "discard:unlisted domain on the bulkmail test relay"),
            ("relay_transport", "$default_transport"),
            # Fast retries and short lifetimes. The time granularity is 1 s.
            ("queue_run_delay", "1s"),
            ("minimal_backoff_time", "1s"),
            ("maximal_backoff_time", "1s"),
            ("delay_warning_time", self.delay_warning),
            ("maximal_queue_lifetime", self.soft_lifetime),
            ("bounce_queue_lifetime", "1h"),
            # No copies to a postmaster who does not exist; double bounces are dropped.
            ("notify_classes", ""),
            # The bounce intake gets one recipient per run, so ${recipient} is one argument.
            (PIPE_SERVICE + "_destination_recipient_limit", "1"),
            (PIPE_SERVICE + "_time_limit", "%ds" % self.pipe_time_limit),
            # A test relay on a 2-core machine needs few processes.
            ("default_process_limit", "10"),
        ]
        if self.pipe_concurrency:
            settings.append((PIPE_SERVICE + "_destination_concurrency_limit",
                             str(self.pipe_concurrency)))
        return "".join("%s = %s\n" % kv for kv in settings)

    def _master_cf(self) -> str:
        # The services Postfix needs, none chrooted (the chroot column is n) so that paths,
        # the pipe command's included, mean what they say. No smtp/lmtp clients, no local(8),
        # no tlsmgr or postscreen.
        # The 127.0.0.1:PORT line binds smtpd to loopback whatever inet_interfaces says.
        services = [
            ("127.0.0.1:%d" % self.port, "inet", "n", "-", "n", "-", "-", "smtpd"),
            ("pickup", "unix", "n", "-", "n", "60", "1", "pickup"),
            ("cleanup", "unix", "n", "-", "n", "-", "0", "cleanup"),
            ("qmgr", "unix", "n", "-", "n", "300", "1", "qmgr"),
            ("rewrite", "unix", "-", "-", "n", "-", "-", "trivial-rewrite"),
            ("bounce", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("defer", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("trace", "unix", "-", "-", "n", "-", "0", "bounce"),
            ("verify", "unix", "-", "-", "n", "-", "1", "verify"),
            ("flush", "unix", "n", "-", "n", "1000?", "0", "flush"),
            ("proxymap", "unix", "-", "-", "n", "-", "-", "proxymap"),
            ("showq", "unix", "n", "-", "n", "-", "-", "showq"),
            ("error", "unix", "-", "-", "n", "-", "-", "error"),
            ("retry", "unix", "-", "-", "n", "-", "-", "error"),
            ("discard", "unix", "-", "-", "n", "-", "-", "discard"),
            ("anvil", "unix", "-", "-", "n", "-", "1", "anvil"),
            ("scache", "unix", "-", "-", "n", "-", "1", "scache"),
            ("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
        ]
        lines = ["%-14s %-10s %-3s %-3s %-3s %-6s %-3s %s" % s for s in services]
        # pipe(8) must run as root (the unprivileged column is n) to switch to pipe_user.
        lines.append("%s unix - n n - - pipe" % PIPE_SERVICE)
        lines.append("  flags=%s user=%s null_sender= directory=%s"
                     % (PIPE_FLAGS, self.pipe_user, self.pipe_directory))
        lines.append("  argv=" + " ".join(_master_cf_arg(a) for a in self.pipe_argv))
        return "\n".join(lines) + "\n"

    def _transport(self) -> str:
        # transport(5): "domain transport:nexthop"; for error(8) the nexthop is the reason,
        # prefixed with an RFC 3463 code (error:5.1.1 user unknown).
        lines = ["%s %s:" % (self.bounce_domain, PIPE_SERVICE)]
        lines += ["%s error:%s" % (d, self.hard_reply) for d in self.hard_domains]
        lines += ["%s retry:%s" % (d, self.soft_reply) for d in self.soft_domains]
        lines += ["%s discard:accepted by the bulkmail test relay" % d for d in self.accept_domains]
        return "\n".join(lines) + "\n"

    def _check_search_path(self):
        """master(8) opens data_directory/master.lock, and other daemons their files, as the
        postfix user by absolute path, so every directory above the workdir must be searchable
        by that user. tempfile.mkdtemp() makes 0700 directories: chmod them 0755 (or 0711)."""
        pw = pwd.getpwnam("postfix")
        groups = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if "postfix" in g.gr_mem}
        d = os.path.dirname(self.workdir)
        while True:
            st = os.stat(d)
            if not (st.st_mode & 0o001
                    or (st.st_uid == pw.pw_uid and st.st_mode & 0o100)
                    or (st.st_gid in groups and st.st_mode & 0o010)):
                raise PostfixError("%s (mode %o) is not searchable by the postfix user; the "
                                   "directories above a Postfix instance's workdir must be "
                                   "(chmod o+x)" % (d, st.st_mode & 0o7777))
            if d == "/":
                return
            d = os.path.dirname(d)

    def _write_config(self):
        self._check_search_path()
        # Root-owned and not group/world writable, as postfix check wants; 0755 so that the
        # postfix user reaches data/ and spool/ by path.
        for d in (self.workdir, self.config_dir, self.queue_dir):
            os.makedirs(d, exist_ok=True)
            os.chown(d, 0, 0)
            os.chmod(d, 0o755)
        for name, text in (("main.cf", self._main_cf()), ("master.cf", self._master_cf()),
                           ("transport", self._transport())):
            path = os.path.join(self.config_dir, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o644)
        # "postfix start" (postfix-script check-fatal, post-install create-missing) creates the
        # queue subdirectories and data_directory with the owners and modes of postfix-files:
        # postfix:root 0700, maildrop postfix:postdrop 0730, public postfix:postdrop 0710.
        # Never run "postfix -c DIR set-permissions" instead: with no multi_instance_directories
        # in /etc/postfix/main.cf it treats this instance as the primary one and would also
        # re-own the shared programs in /usr/sbin.

    # -- process handling ----------------------------------------------------------------------

    def _run(self, argv: list[str], timeout: float) -> str:
        env = dict(os.environ)
        env.pop("MAIL_CONFIG", None)  # -c is the only say on which instance
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               env=env, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise PostfixError("%s timed out after %s s" % (" ".join(argv), timeout)) from e
        if p.returncode != 0:
            raise PostfixError("%s exited %d: %s%s\nlog tail:\n%s"
                               % (" ".join(argv), p.returncode, p.stdout, p.stderr,
                                  self.log_text()[-3000:]))
        return p.stdout

    def _postfix(self, command: str, timeout: float):
        self._run([POSTFIX, "-c", self.config_dir, command], timeout=timeout)

    def _read_master_pid(self) -> int | None:
        try:
            with open(os.path.join(self.queue_dir, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def _kill_master(self, pid: int | None = None, grace: float = 5.0):
        """Waits up to grace s for the master to go, then SIGKILLs its process group (the
        master is a session leader; its children share the group)."""
        pid = pid or self._read_master_pid()
        if not pid or not self._is_our_master(pid):
            return
        deadline = time.monotonic() + grace
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            for target in (-pid, pid):
                try:
                    os.kill(target, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    def _is_our_master(self, pid: int) -> bool:
        """True when pid is a Postfix master started with this instance's configuration (a pid
        file outlives its process, and the pid may have been reused since)."""
        if not _alive(pid):
            return False
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                cmd = f.read()
        except OSError:
            return False
        return (b"master" in cmd
                and ("MAIL_CONFIG=" + self.config_dir).encode() in env)

    def _bind_failed(self) -> bool:
        return "port %d: Address already in use" % self.port in self.log_text()

    def _wait_listening(self, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    banner = s.recv(512)
                    s.sendall(b"QUIT\r\n")
                if banner.startswith(b"220"):
                    return
            except OSError as e:
                if e.errno not in (errno.ECONNREFUSED, errno.ECONNRESET, None):
                    raise
            if time.monotonic() >= deadline:
                raise PostfixError("smtpd did not answer on 127.0.0.1:%d within %s s; log tail:\n%s"
                                   % (self.port, timeout, self.log_text()[-3000:]))
            time.sleep(0.1)
