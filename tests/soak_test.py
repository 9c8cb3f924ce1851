"""The soak with faults at a tenth of bench/soak's size (bench/soak_run.py does the work and the
judging): 100,000 messages through bulkmaild into a relay that refuses connections, ends sessions
with 421, answers 451, drops connections in DATA and stalls past the timeout, while bulkmaild is
killed -9 and started again every 15 s or so, one-click opt-outs arrive for queued recipients and
SIGHUP reloads it. Every message ends sent or failed with the relay's reply, every duplicate is one
the restarted daemon named as in flight, nobody's message is accepted after their opt-out's 200,
and memory, threads and descriptors stay flat."""
import os
import sys
import tempfile
import unittest

from daemon_test import BIN, SRC

sys.path.insert(0, os.path.join(SRC, "bench"))
import soak_run  # noqa: E402


class SoakTest(unittest.TestCase):
    def test_100000_messages_through_kills_a_flapping_relay_opt_outs_and_reloads(self):
        with tempfile.TemporaryDirectory() as d:
            # Given up on within ctest's 900 s, so that a slow run still reports what it saw.
            soak = soak_run.Soak(BIN, d, 100000, connections=8, kill_every=15, optouts_per_second=20,
                                 hup_every=20, refuse="2:20", message_timeout=5, warm_seconds=8,
                                 timeout=700, say=lambda text: print(text, flush=True))
            finished = soak.run()
            rows = soak.check()
            soak_run.print_rows(rows)
            self.assertTrue(finished, "the queue was not done within %.0f s" % soak.timeout)
            self.assertEqual([(what, figure) for what, figure, ok in rows if ok is False], [])


if __name__ == "__main__":
    unittest.main()
