"""An attack on bulkmaild's webhook, for bench/webhook --attack and tests/webhook_abuse_test.py. On
loopback only: the target is 127.0.0.1; the attackers come from other loopback addresses
(127.0.0.2 and up), as they would from other hosts, so that the server's per-client cap meets
them as it meets the internet's.

What it does at once, until stopped (asyncio, one thread):
  slowloris      N connections sending a request header one byte a second, reconnecting when cut
  big headers    requests with a 100 KB header field
  big bodies     POSTs declaring and sending a 10 MB body
  random bytes   connections sending random bytes
  pipelined      a valid request, garbage, then another valid request, in one write
  forged         one-click POSTs with random tokens, at a set rate, pipelined on keep-alive
                 connections: every answer is counted by status, and a 200 is a forged token
                 accepted

And what a genuine provider does meanwhile (genuine_one_clicks): one-click POSTs with real
tokens, a new connection each, each timed from connect to the whole answer.
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import random
import re
import resource
import socket
import time

STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) ")
ONE_CLICK = b"List-Unsubscribe=One-Click"


def raise_fd_limit(n):
    """Up to `n` open files for this process, as far as its hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def forged_token():
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    return "".join(random.choice(alphabet) for _ in range(random.choice((22, 64, 86, 90))))


def one_click_request(path):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: mail.example.com\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
            % len(ONE_CLICK) + ONE_CLICK)


class Attack:
    def __init__(self, port, slowloris=2000, forged_per_second=10000, sources=40, prefix="/unsubscribe"):
        self.port = port
        self.slowloris_n = slowloris
        self.forged_rate = forged_per_second
        self.sources = ["127.0.0.%d" % (2 + i) for i in range(sources)]
        self.prefix = prefix
        self.stats = {"slowloris connects": 0, "slowloris cut off": 0, "big headers": {}, "big bodies": {},
                      "random bytes": {}, "pipelined": {}, "forged sent": 0, "forged answers": {}}
        self.running = True

    def source(self, i):
        return (self.sources[i % len(self.sources)], 0)

    async def connect(self, i):
        return await asyncio.open_connection("127.0.0.1", self.port, local_addr=self.source(i))

    def count(self, name, status):
        d = self.stats[name]
        d[status] = d.get(status, 0) + 1

    async def first_status(self, reader, timeout=15):
        try:
            data = await asyncio.wait_for(reader.read(4096), timeout)
        except ConnectionResetError:
            return "cut off"
        except (asyncio.TimeoutError, OSError):
            return "no answer"
        m = STATUS.match(data)
        return m.group(1).decode() if m else ("closed" if not data else "garbled")

    async def slowloris(self, i):
        header = b"POST " + self.prefix.encode() + b"/x HTTP/1.1\r\nHost: mail.example.com\r\nX-Slow: " + b"a" * 4096
        while self.running:
            try:
                reader, writer = await self.connect(i)
            except OSError:
                await asyncio.sleep(0.5)
                continue
            self.stats["slowloris connects"] += 1
            cut = False
            try:
                for b in header:
                    if not self.running:
                        break
                    writer.write(bytes([b]))
                    await writer.drain()
                    await asyncio.sleep(1)
                    if reader.at_eof():
                        cut = True
                        break
            except OSError:
                cut = True
            if cut:
                self.stats["slowloris cut off"] += 1
            writer.close()
            await asyncio.sleep(0.1)

    async def one_shot(self, name, i, payload, chunked_body=0):
        """A connection that sends `payload` (then `chunked_body` bytes of body, if any) and counts
        the first status it gets back."""
        try:
            reader, writer = await self.connect(i)
        except OSError:
            self.count(name, "refused")
            return
        try:
            writer.write(payload)
            sent = 0
            chunk = b"x" * 65536
            while sent < chunked_body and not reader.at_eof():
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
            await writer.drain()
        except OSError:
            # The server closed the connection before taking all of it: what it answered first, if
            # anything, may be lost with the reset.
            self.count(name, "cut off")
            writer.close()
            return
        self.count(name, await self.first_status(reader))
        writer.close()

    async def every(self, seconds, fn):
        i = 0
        while self.running:
            asyncio.ensure_future(fn(i))
            i += 1
            await asyncio.sleep(seconds)

    async def big_header(self, i):
        await self.one_shot("big headers", i, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n")

    async def big_body(self, i):
        size = 10 * 1024 * 1024
        await self.one_shot("big bodies", i, b"POST " + self.prefix.encode() + b"/x HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % size,
                            chunked_body=size)

    async def random_bytes(self, i):
        await self.one_shot("random bytes", i, os.urandom(4096))

    async def pipelined(self, i):
        await self.one_shot("pipelined", i, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(512) +
                            b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")

    async def forged_connection(self, i, share):
        """Keeps one keep-alive connection sending its `share` of the forged rate, pipelined."""
        while self.running:
            try:
                reader, writer = await self.connect(i)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            answers = asyncio.ensure_future(self.read_answers(reader))
            tick = 0.02
            owed = 0.0
            try:
                while self.running and not answers.done():
                    owed += share * tick
                    n = int(owed)
                    owed -= n
                    if n:
                        writer.write(b"".join(one_click_request(self.prefix + "/" + forged_token())
                                              for _ in range(n)))
                        self.stats["forged sent"] += n
                        await writer.drain()
                    await asyncio.sleep(tick)
            except OSError:
                pass
            writer.close()
            answers.cancel()

    async def read_answers(self, reader):
        rest = b""
        while True:
            data = await reader.read(65536)
            if not data:
                return
            data = rest + data
            for m in STATUS.finditer(data):
                s = m.group(1).decode()
                self.stats["forged answers"][s] = self.stats["forged answers"].get(s, 0) + 1
            rest = data[-16:]  # a status line cut between two reads is found next time
            rest = rest[rest.rfind(b"\n") + 1:] if b"\n" in rest else rest

    async def run(self, seconds):
        raise_fd_limit(self.slowloris_n + 1000)
        tasks = [asyncio.ensure_future(self.slowloris(i)) for i in range(self.slowloris_n)]
        forged_connections = 16
        tasks += [asyncio.ensure_future(self.forged_connection(1000 + i, self.forged_rate / forged_connections))
                  for i in range(forged_connections)]
        tasks += [asyncio.ensure_future(self.every(0.5, self.big_header)),
                  asyncio.ensure_future(self.every(2.0, self.big_body)),
                  asyncio.ensure_future(self.every(0.2, self.random_bytes)),
                  asyncio.ensure_future(self.every(0.2, self.pipelined))]
        await asyncio.sleep(seconds)
        self.running = False
        await asyncio.sleep(1.2)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def genuine_one_clicks(port, paths, per_second, seconds):
    """Real tokens' one-clicks, a new connection each, from 127.0.0.1; returns [(status, ms)]."""
    results = []
    interval = 1.0 / per_second
    end = time.monotonic() + seconds
    paths = list(paths)

    async def one(path):
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(one_click_request(path))
            await writer.drain()
            data = await asyncio.wait_for(reader.read(4096), 10)
            writer.close()
            m = STATUS.match(data)
            status = m.group(1).decode() if m else "garbled"
        except (OSError, asyncio.TimeoutError) as e:
            status = type(e).__name__
        results.append((status, (time.monotonic() - t0) * 1000))

    pending = []
    while time.monotonic() < end and paths:
        pending.append(asyncio.ensure_future(one(paths.pop())))
        await asyncio.sleep(interval)
    await asyncio.gather(*pending)
    return results


def p99(latencies):
    s = sorted(latencies)
    return s[min(len(s) - 1, int(len(s) * 0.99))] if s else float("nan")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def under_attack(port, attack_seconds, genuine_paths, genuine_per_second, slowloris=2000, forged_per_second=10000):
    """Runs the attack (a process of its own, so that its work never delays the genuine client's)
    and genuine one-clicks together for `attack_seconds`; returns (attack stats, genuine
    results)."""
    attacker = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--port", str(port),
                                 "--seconds", str(attack_seconds), "--slowloris", str(slowloris),
                                 "--forged", str(forged_per_second)], stdout=subprocess.PIPE)
    time.sleep(1)  # the attack under way first
    genuine = asyncio.run(genuine_one_clicks(port, genuine_paths, genuine_per_second, attack_seconds - 1))
    out, _ = attacker.communicate(timeout=attack_seconds + 60)
    if attacker.returncode != 0:
        raise RuntimeError("the attacker failed")
    return json.loads(out), genuine


def loopback_sources_work():
    """Whether this host lets a socket bind 127.0.0.2 (Linux routes all of 127/8 to lo)."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description="Attacks the webhook on 127.0.0.1:PORT; prints what it got, as JSON.")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--slowloris", type=int, default=2000)
    ap.add_argument("--forged", type=int, default=10000)
    a = ap.parse_args()
    attack = Attack(a.port, slowloris=a.slowloris, forged_per_second=a.forged)
    asyncio.run(attack.run(a.seconds))
    json.dump(attack.stats, sys.stdout)


if __name__ == "__main__":
    main()
