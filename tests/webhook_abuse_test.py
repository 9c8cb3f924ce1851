"""The webhook under abuse while bulkmaild drains a queue: slowloris connections, 100 KB headers,
10 MB bodies, random bytes, pipelined garbage and forged one-click tokens, all at once from other
loopback addresses (bench/webhook_attack.py), while a genuine provider's one-clicks come from
127.0.0.1. A smaller dose than bench/webhook --attack, which measures the rates; here what must
hold whatever the machine's speed: every genuine one-click answered 200 and recorded, no forged
token accepted, sending goes on, memory bounded."""
import os
import re
import sqlite3
import subprocess
import sys
import threading
import unittest
import urllib.request

from daemon_test import BIN, SRC, Env, wait_for

sys.path.insert(0, os.path.join(SRC, "bench"))
import webhook_attack  # noqa: E402


@unittest.skipUnless(webhook_attack.loopback_sources_work(), "needs 127.0.0.2 and up on loopback")
class WebhookAbuseTest(unittest.TestCase):
    def tearDown(self):
        self.env.close()

    def test_genuine_one_clicks_are_honoured_and_no_forgery_is_while_attacked_and_sending(self):
        e = self.env = Env(connections=4, rate=300)
        e.start_server()
        e.import_many(20000)
        genuine = ["genuine%d@example.net" % i for i in range(200)]
        links = subprocess.run([os.path.join(BIN, "bulkmailctl"), "--config", e.config, "unsubscribe-link",
                                "--category", "customer-update", "-"], input="\n".join(genuine).encode(),
                               capture_output=True, check=True).stdout.decode().splitlines()
        paths = ["/" + line.split("\t")[1].split("/", 3)[3] for line in links]
        self.assertEqual(len(paths), 200)
        e.start_daemon()
        wait_for(lambda: len(e.received()) >= 100, 30, "sending under way")
        rss_before = webhook_attack.rss_kib(e.daemon.pid)
        largest = [rss_before]
        done = threading.Event()

        def sample():
            while not done.wait(0.2):
                largest[0] = max(largest[0], webhook_attack.rss_kib(e.daemon.pid))
        sampler = threading.Thread(target=sample)
        sampler.start()
        marks = []
        try:
            stats, answers = webhook_attack.under_attack(e.http_port, 12, paths, 15, slowloris=300,
                                                         forged_per_second=1000,
                                                         mark=lambda: marks.append(len(e.received())))
        finally:
            done.set()
            sampler.join()
        self.assertIsNone(e.daemon.poll(), "bulkmaild died under the attack")
        # Every genuine one-click was answered 200, and each is a recorded suppression.
        self.assertEqual(len(answers), 180)
        self.assertEqual([s for s, _ in answers if s != "200"], [])
        db = sqlite3.connect(os.path.join(e.dir, "queue.db"), timeout=10)
        recorded = db.execute("SELECT count(*) FROM suppressions WHERE address LIKE 'genuine%' "
                              "AND source = 'one-click'").fetchone()[0]
        everyone = db.execute("SELECT count(*) FROM suppressions").fetchone()[0]
        db.close()
        self.assertEqual(recorded, len(answers))
        self.assertEqual(everyone, len(answers))  # and nobody else: no forgery took effect
        # No forged token was accepted, and the forgeries were answered (not just dropped).
        self.assertGreater(stats["forged sent"], 5000)
        self.assertGreater(stats["forged per second"], 800)
        self.assertNotIn("200", stats["forged answers"])
        self.assertGreater(stats["forged answers"].get("400", 0), stats["forged sent"] // 2)
        # Each kind of junk got its answer; the slowloris connections were held, then cut off
        # with 408 once the read timeout (10 s) passed.
        self.assertGreater(stats["slowloris open at most"], 250)
        self.assertEqual(set(stats["slowloris answers"]), {"408"})
        self.assertEqual(set(stats["pipelined"]), {"200,400"})
        self.assertEqual(set(stats["big headers"]), {"431"})
        self.assertEqual(set(stats["random bytes"]), {"400"})
        self.assertGreater(sum(stats["big bodies"].values()), 0)
        self.assertTrue(set(stats["big bodies"]) <= {"413", "cut off"}, stats["big bodies"])
        # /metrics counted the server's own answers by reason: an operator sees the attack there.
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % e.http_port, timeout=10).read().decode()
        refused = {k: float(v) for k, v in
                   re.findall(r'^bulkmail_http_refused_total\{reason="([a-z-]+)"\} (\S+)$', text, re.M)}
        self.assertGreaterEqual(refused["read-timeout"], stats["slowloris answers"]["408"])
        self.assertGreaterEqual(refused["header-too-large"], stats["big headers"]["431"])
        self.assertGreaterEqual(refused["malformed"], stats["random bytes"]["400"])
        # Sending went on meanwhile, and memory stayed bounded.
        self.assertGreater(marks[1], marks[0] + 100)
        self.assertLess(largest[0], rss_before + 100 * 1024, "resident memory grew by more than 100 MB")


if __name__ == "__main__":
    unittest.main()
