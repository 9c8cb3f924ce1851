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
  forged         one-click POSTs with forged tokens shaped like a real one (its version byte and
                 length, so each reaches the signature check; one in ten a real token with one bit
                 flipped), paced by the clock, pipelined on keep-alive connections: every answer
                 is counted by status, and a 200 is a forged token accepted

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


def b64url_decode(text):
    import base64
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_encode(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forger(like):
    """Forged tokens shaped like the real token `like` (its version byte and length, so that each
    reaches the signature check): nine in ten random, one in ten `like` with one bit flipped."""
    real = b64url_decode(like)

    def forge():
        if random.random() < 0.1:
            bit = random.randrange(len(real) * 8)
            tampered = bytearray(real)
            tampered[bit // 8] ^= 1 << (bit % 8)
            return b64url_encode(bytes(tampered))
        return b64url_encode(real[:1] + os.urandom(len(real) - 1))
    return forge


def one_click_request(path, close=False):
    return (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: mail.example.com\r\n" +
            (b"Connection: close\r\n" if close else b"") +
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
            % len(ONE_CLICK) + ONE_CLICK)


class Attack:
    def __init__(self, port, like, slowloris=2000, forged_per_second=10000, sources=40, prefix="/unsubscribe"):
        self.port = port
        self.forge = forger(like)
        self.slowloris_n = slowloris
        self.forged_rate = forged_per_second
        self.sources = ["127.0.0.%d" % (2 + i) for i in range(sources)]
        self.prefix = prefix
        self.stats = {"slowloris connects": 0, "slowloris cut off": 0, "slowloris open at most": 0,
                      "slowloris answers": {}, "big headers": {}, "big bodies": {},
                      "random bytes": {}, "pipelined": {}, "forged sent": 0, "forged answers": {}}
        self.running = True
        self.slowloris_open = 0
        self.forged_seconds = 0.0

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
            self.slowloris_open += 1
            self.stats["slowloris open at most"] = max(self.stats["slowloris open at most"], self.slowloris_open)
            answer = asyncio.ensure_future(reader.read(4096))  # whatever the server says, when it does
            try:
                for b in header:
                    if not self.running or answer.done():
                        break
                    writer.write(bytes([b]))
                    await writer.drain()
                    await asyncio.sleep(1)
            except OSError:
                pass
            if answer.done():
                self.stats["slowloris cut off"] += 1
                try:
                    m = STATUS.match(answer.result())
                    status = m.group(1).decode() if m else "closed"
                except OSError:
                    status = "reset"
                self.count("slowloris answers", status)
            else:
                answer.cancel()
            self.slowloris_open -= 1
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
        """A valid request, garbage and another valid request in one write: the first is answered,
        the garbage gets 400 and the connection closes, the third is never answered."""
        try:
            reader, writer = await self.connect(i)
        except OSError:
            self.count("pipelined", "refused")
            return
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00\x01garbage " + os.urandom(512) +
                     b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), 15)
                if not chunk:
                    break
                data += chunk
        except (OSError, asyncio.TimeoutError):
            pass
        self.count("pipelined", ",".join(m.group(1).decode() for m in STATUS.finditer(data)) or "none")
        writer.close()

    async def forged_connection(self, i, share):
        """Keeps one keep-alive connection sending its `share` of the forged rate, pipelined."""
        while self.running:
            try:
                reader, writer = await self.connect(i)
            except OSError:
                await asyncio.sleep(0.2)
                continue
            answers = asyncio.ensure_future(self.read_answers(reader))
            last = time.monotonic()
            owed = 0.0
            try:
                while self.running and not answers.done():
                    await asyncio.sleep(0.02)
                    now = time.monotonic()
                    owed += share * (now - last)  # by the clock: a late tick sends what it owes
                    last = now
                    n = int(owed)
                    owed -= n
                    if n:
                        writer.write(b"".join(one_click_request(self.prefix + "/" + self.forge())
                                              for _ in range(n)))
                        self.stats["forged sent"] += n
                        await writer.drain()
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
            end = 0
            for m in STATUS.finditer(data):
                s = m.group(1).decode()
                self.stats["forged answers"][s] = self.stats["forged answers"].get(s, 0) + 1
                end = m.end()
            rest = data[end:][-16:]  # a status line cut between two reads is found next time

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
        started = time.monotonic()
        await asyncio.sleep(seconds)
        self.forged_seconds = time.monotonic() - started
        self.stats["forged per second"] = round(self.stats["forged sent"] / self.forged_seconds)
        self.running = False
        await asyncio.sleep(1.2)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def genuine_one_clicks(port, paths, per_second, seconds):
    """Real tokens' one-clicks, a new connection each, from 127.0.0.1, at fixed times (start + k /
    per_second); each timed from when it was due to the whole answer. Returns [(status, ms)]."""
    results = []
    paths = list(paths)
    start = time.monotonic()
    count = min(len(paths), int(per_second * seconds))

    async def one(path, due):
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(one_click_request(path, close=True))  # one request, as a provider sends
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 10)  # the answer, to its end
            writer.close()
            m = STATUS.match(data)
            status = m.group(1).decode() if m else "garbled"
        except (OSError, asyncio.TimeoutError) as e:
            status = type(e).__name__
        results.append((status, (time.monotonic() - due) * 1000))

    await asyncio.gather(*(one(paths[k], start + k / per_second) for k in range(count)))
    return results


def p99(latencies):
    s = sorted(latencies)
    return s[min(len(s) - 1, int(len(s) * 0.99))] if s else float("nan")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1))


def under_attack(port, attack_seconds, genuine_paths, genuine_per_second, slowloris=2000, forged_per_second=10000,
                 mark=None):
    """Runs the attack (a process of its own, so that its work never delays the genuine client's)
    and genuine one-clicks together; `mark`, if given, is called as the genuine one-clicks start
    and again as they end, the attack under way all along. Returns (attack stats, genuine
    results)."""
    like = genuine_paths[0].rsplit("/", 1)[1]
    attacker = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--port", str(port),
                                 "--seconds", str(attack_seconds + 2), "--slowloris", str(slowloris),
                                 "--forged", str(forged_per_second), "--like", like], stdout=subprocess.PIPE)
    try:
        time.sleep(1)  # the attack under way first
        if mark:
            mark()
        genuine = asyncio.run(genuine_one_clicks(port, genuine_paths[1:], genuine_per_second, attack_seconds))
        if mark:
            mark()
        out, _ = attacker.communicate(timeout=attack_seconds + 60)
    finally:
        if attacker.poll() is None:
            attacker.kill()
            attacker.wait()
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
    ap.add_argument("--like", required=True, help="a real token, whose shape the forged ones take")
    a = ap.parse_args()
    attack = Attack(a.port, a.like, slowloris=a.slowloris, forged_per_second=a.forged)
    asyncio.run(attack.run(a.seconds))
    json.dump(attack.stats, sys.stdout)


if __name__ == "__main__":
    main()
