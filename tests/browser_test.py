"""The unsubscribe pages in a real browser: headless Chromium (Debian's), driven by playwright-core
(tests/browser/unsubscribe.js), opens the "all mail" link from the HTML part of a message bulkmaild
delivered, presses "Stop all mail", and the suppression is checked in the database. Screenshots of
both pages are kept in $BULKMAIL_ARTIFACT_DIR."""
import json
import os
import re
import subprocess
import unittest
import urllib.parse

from daemon_test import SRC, wait_for
from webhook_test import WebhookEnv

ARTIFACTS = os.environ.get("BULKMAIL_ARTIFACT_DIR", os.path.join(SRC, "build", "test-artifacts"))


class BrowserTest(unittest.TestCase):
    def test_a_recipient_stops_all_mail_from_the_link_in_a_message(self):
        e = WebhookEnv(connections=1)
        try:
            e.start_server()
            e.start_daemon()
            e.wait_http()
            e.enqueue("robin@example.com")
            wait_for(lambda: len(e.received()) == 1, 20, "the delivery")
            _, msg = e.delivered("robin@example.com")
            html = msg.get_body(preferencelist=("html",)).get_content()
            links = re.findall(r'href="([^"]+)"', html)
            all_mail = [u for u in links if "/unsubscribe/" in u and u.endswith("?scope=all")]
            self.assertEqual(len(all_mail), 1, links)
            # The message links to the public URL; the daemon under test listens on loopback.
            parts = urllib.parse.urlsplit(all_mail[0].replace("&amp;", "&"))
            local = "http://127.0.0.1:%d%s?%s" % (e.http_port, parts.path, parts.query)

            os.makedirs(ARTIFACTS, exist_ok=True)
            r = subprocess.run(["node", os.path.join(SRC, "tests", "browser", "unsubscribe.js"), local, ARTIFACTS],
                               capture_output=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            seen = json.loads(r.stdout)

            self.assertEqual(seen["first_status"], 200)
            self.assertIn("r***@example.com", seen["first_text"])
            self.assertNotIn("robin@example.com", seen["first_text"])
            self.assertLessEqual(seen["first_width"], 390, "the page scrolls sideways on a phone")
            self.assertEqual(seen["second_status"], 200)
            self.assertIn("No more mail from Example Telecom, Inc. will be sent to r***@example.com", seen["second_text"])
            # Only the page and its form post were requested: nothing external, no scripts.
            for req in seen["requests"]:
                self.assertTrue(req.startswith(("GET http://127.0.0.1", "POST http://127.0.0.1")), req)
            self.assertEqual(sum(1 for x in seen["requests"] if x.startswith("POST")), 1)
            self.assertEqual(e.suppression("robin@example.com"), [("", "unsubscribe", "web")])
            for name in ("unsubscribe-confirm.png", "unsubscribe-done.png"):
                self.assertGreater(os.path.getsize(os.path.join(ARTIFACTS, name)), 1000)
        finally:
            e.close()


if __name__ == "__main__":
    unittest.main()
