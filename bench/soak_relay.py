#!/usr/bin/python3
"""A relay that misbehaves on purpose, for bench/soak and tests/soak_test.py (Debian's
python3-aiosmtpd, on loopback only).

Each fault is drawn at random (seeded, so a run can be repeated) at the moment it applies:
  --refuse SECONDS:PERIOD  stops listening for SECONDS of every PERIOD (new connections are
                           refused; the ones open stay), starting PERIOD - SECONDS after start
  --session-421 P          answers MAIL FROM with 421 and closes the connection, for a fraction P
                           of transactions (libcurl reuses a connection from message to message,
                           so one transaction is the session the relay can end)
  --rcpt-451 P             answers RCPT TO with 451 for a fraction P of recipients
  --drop P                 drops the connection after DATA, before answering, for a fraction P of
                           messages (the client never learns the outcome; the relay keeps nothing)
  --stall P:SECONDS        waits SECONDS after DATA before answering, for a fraction P of messages
                           (past the client's timeout; the relay keeps nothing)
Every message it accepts is one line in --out: "<MAIL FROM time> <accepted time> <recipient>",
times in seconds since the epoch, written before the 250 is sent. --stats gets a JSON object of
what it did (connections, each fault, accepted), rewritten every second and at SIGTERM.
It prints "ready PORT" once listening, and exits 1 if it cannot listen again after a refusal
window (give it a --port below the kernel's ephemeral range: tests/ports.py).
"""
import argparse
import asyncio
import collections
import json
import os
import random
import signal
import sys
import time

from aiosmtpd.smtp import SMTP


class CountingSMTP(SMTP):
    def __init__(self, relay, *args, **kw):
        super().__init__(*args, **kw)
        self.relay = relay

    def connection_made(self, transport):
        self.relay.counts["connections"] += 1
        super().connection_made(transport)


class Relay:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.counts = collections.Counter()
        self.out = open(a.out, "a", buffering=1 << 16)
        self.stall_p, self.stall_seconds = (float(x) for x in a.stall.split(":"))

    # aiosmtpd's hooks (a hook that exists must record what the default would).
    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.rng.random() < self.a.session_421:
            self.counts["421 session"] += 1
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.7.0 Too many sessions, closing transmission channel"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        session.mail_at = time.time()
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rng.random() < self.a.rcpt_451:
            self.counts["451 recipient"] += 1
            return "451 4.7.1 <%s>: Recipient address rejected: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        r = self.rng.random()
        if r < self.a.drop:
            self.counts["dropped in DATA"] += 1
            server.transport.abort()
            return "451 4.3.0 connection dropped"  # never reaches the client: the socket is gone
        if r < self.a.drop + self.stall_p:
            self.counts["stalled"] += 1
            await asyncio.sleep(self.stall_seconds)
            return "451 4.4.2 Timeout"  # the client has given up by now; nothing was kept
        self.counts["accepted"] += 1
        for rcpt in envelope.rcpt_tos:
            self.out.write("%.3f %.3f %s\n" % (session.mail_at, time.time(), rcpt))
        return "250 2.0.0 Ok: queued"

    def write_stats(self):
        self.out.flush()
        tmp = self.a.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(self.counts), f)
        os.replace(tmp, self.a.stats)

    async def run(self):
        loop = asyncio.get_running_loop()
        factory = lambda: CountingSMTP(self, self, decode_data=False, enable_SMTPUTF8=True,
                                       hostname="relay.soak.test", timeout=60)
        server = await loop.create_server(factory, "127.0.0.1", self.a.port)
        port = server.sockets[0].getsockname()[1]
        print("ready %d" % port, flush=True)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)

        async def stats():
            while True:
                self.write_stats()
                await asyncio.sleep(1)

        failed = []

        async def refuse():
            seconds, period = (float(x) for x in self.a.refuse.split(":"))
            if seconds <= 0:
                return
            nonlocal server
            try:
                while True:
                    await asyncio.sleep(period - seconds)
                    server.close()
                    self.counts["refusal windows"] += 1
                    await asyncio.sleep(seconds)
                    server = await loop.create_server(factory, "127.0.0.1", port)
            except OSError as e:  # the port taken meanwhile: say so and stop, never refuse forever
                print("soak_relay: cannot listen on %d again: %s" % (port, e), file=sys.stderr)
                failed.append(e)
                stop.set()

        tasks = [asyncio.create_task(stats()), asyncio.create_task(refuse())]
        await stop.wait()
        for t in tasks:
            t.cancel()
        server.close()
        self.write_stats()
        return 1 if failed else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--refuse", default="5:60")
    p.add_argument("--session-421", type=float, default=0.005)
    p.add_argument("--rcpt-451", type=float, default=0.01)
    p.add_argument("--drop", type=float, default=0.002)
    p.add_argument("--stall", default="0.001:15")
    a = p.parse_args()
    return asyncio.run(Relay(a).run())


if __name__ == "__main__":
    sys.exit(main())
