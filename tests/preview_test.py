"""bulkmailctl preview, checked by parts no one here wrote: Python's email package parses the
message, and dkimpy verifies its DKIM signature (Ed25519 and RSA) against the test key's record."""
import email
import email.policy
import os
import re
import subprocess
import tempfile
import unittest

import dkim

BIN = os.environ["BULKMAIL_BIN_DIR"]
SRC = os.environ["BULKMAIL_SOURCE_DIR"]
SECRET = "0123456789abcdef" * 4

VARS = ["first_name=Zoë", "headline=Votre débit double — sans frais supplémentaires pour vous",
        "body=From December 1 your plan moves to 1 Gbps."]


def make_config(tmp, algorithm):
    key = os.path.join(tmp, "dkim.pem")
    args = ["openssl", "genpkey", "-out", key]
    args += ["-algorithm", "ed25519"] if algorithm == "ed25519" else ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    subprocess.run(args, check=True, capture_output=True)
    for name in ("unsubscribe.key", "api.token"):
        with open(os.path.join(tmp, name), "w") as f:
            f.write(SECRET + "\n")
    with open(os.path.join(SRC, "config", "bulkmail.yaml")) as f:
        yaml = f.read()
    yaml = yaml.replace("templates: ../templates", "templates: " + os.path.join(SRC, "templates"))
    yaml = yaml.replace("# dkim:\n#   domain: mail.example.com\n#   selector: s2026\n#   key_file: dkim.pem",
                        "dkim:\n  domain: mail.example.com\n  selector: s2026\n  key_file: dkim.pem")
    assert "\ndkim:" in yaml, "the example config's dkim block changed shape"
    yaml = yaml.replace("  # mailto: unsubscribe@mail.example.com", "  mailto: unsubscribe@mail.example.com")
    path = os.path.join(tmp, "bulkmail.yaml")
    with open(path, "w") as f:
        f.write(yaml)
    pub = subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return path, key, pub


def preview(config, *extra):
    args = [os.path.join(BIN, "bulkmailctl"), "--config", config, "preview", "--category", "customer-update",
            "--to", "Jane.Doe@Example.com", "--campaign", "nov-2026"]
    for v in VARS:
        args += ["--var", v]
    return subprocess.run(args + list(extra), check=True, capture_output=True).stdout


def dns_record(algorithm, pub_der):
    import base64
    if algorithm == "ed25519":
        raw = pub_der[-32:]  # SubjectPublicKeyInfo for Ed25519 ends with the 32-byte key
        return b"v=DKIM1; k=ed25519; p=" + base64.b64encode(raw)
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(pub_der)


class PreviewTest(unittest.TestCase):
    def check_algorithm(self, algorithm):
        with tempfile.TemporaryDirectory() as tmp:
            config, _, pub = make_config(tmp, algorithm)
            raw = preview(config)
            record = dns_record(algorithm, pub)

            def dnsfunc(name, timeout=5):
                self.assertEqual(name, b"s2026._domainkey.mail.example.com.")
                return record

            self.assertTrue(dkim.verify(raw, dnsfunc=dnsfunc), "dkimpy rejects the signature")
            # The record bulkmailctl prints for DNS is the one that verifies.
            printed = subprocess.run([os.path.join(BIN, "bulkmailctl"), "--config", config, "dkim-record"],
                                     check=True, capture_output=True).stdout.decode()
            # In strings of at most 255 bytes (a DNS character-string's limit), joined by resolvers.
            prefix = "s2026._domainkey.mail.example.com. IN TXT "
            self.assertTrue(printed.startswith(prefix), printed)
            strings = re.findall(r'"([^"]*)"', printed[len(prefix):])
            self.assertEqual(printed, prefix + " ".join('"%s"' % s for s in strings) + "\n")
            self.assertTrue(all(len(s) <= 255 for s in strings), [len(s) for s in strings])
            self.assertEqual("".join(strings), record.decode())
            if algorithm == "rsa":
                self.assertGreater(len(strings), 1)  # 2048 bits do not fit one string
            sig = email.message_from_bytes(raw, policy=email.policy.default)["DKIM-Signature"]
            self.assertIn("a=%s-sha256" % ("ed25519" if algorithm == "ed25519" else "rsa"), sig)
            tags = dict(t.strip().split("=", 1) for t in sig.split(";") if "=" in t)
            h = "".join(tags["h"].split()).lower().split(":")
            for name in ("from", "to", "subject", "date", "message-id", "mime-version", "content-type",
                         "list-unsubscribe", "list-unsubscribe-post", "list-id"):
                self.assertIn(name, h)

            # Any change to a signed header, or an added List-Unsubscribe, breaks the signature.
            tampered = raw.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
                                   b"List-Unsubscribe-Post: List-Unsubscribe=One-Clack")
            self.assertFalse(dkim.verify(tampered, dnsfunc=dnsfunc))
            added = raw.replace(b"\r\nMIME-Version:", b"\r\nList-Unsubscribe: <https://evil.example/>\r\nMIME-Version:")
            self.assertFalse(dkim.verify(added, dnsfunc=dnsfunc))

    def test_ed25519_signature_verifies(self):
        self.check_algorithm("ed25519")

    def test_rsa_signature_verifies(self):
        self.check_algorithm("rsa")

    def test_with_a_bounce_domain_the_cfbl_address_is_signed_and_the_envelope_is_its_own(self):
        with tempfile.TemporaryDirectory() as tmp:
            config, _, pub = make_config(tmp, "ed25519")
            with open(config) as f:
                yaml = f.read()
            self.assertIn("\n  # domain: bounces.mail.example.com\n", yaml,
                          "the example config's bounces block changed shape")
            yaml = yaml.replace("\n  # domain: bounces.mail.example.com\n",
                                "\n  domain: bounces.mail.example.com\n")
            with open(config, "w") as f:
                f.write(yaml)
            raw = preview(config, "--envelope")
            record = dns_record("ed25519", pub)
            # dkimpy verifies the message as delivered: Return-Path on top, never signed.
            self.assertTrue(dkim.verify(raw, dnsfunc=lambda name, timeout=5: record))
            m = email.message_from_bytes(raw, policy=email.policy.default)
            self.assertRegex(m["Return-Path"], r"^<b-[a-z2-7]{16,29}@bounces\.mail\.example\.com>$")
            self.assertEqual(m["CFBL-Address"], "fbl@bounces.mail.example.com; report=arf")
            tags = dict(t.strip().split("=", 1) for t in m["DKIM-Signature"].split(";") if "=" in t)
            self.assertIn("cfbl-address", "".join(tags["h"].split()).lower().split(":"))
            # A CFBL-Address changed in transit (to send someone else the complaints) breaks it.
            forged = raw.replace(b"CFBL-Address: fbl@bounces", b"CFBL-Address: fbl@attacker")
            self.assertFalse(dkim.verify(forged, dnsfunc=lambda name, timeout=5: record))

    def test_an_independent_parser_finds_every_header_and_both_parts(self):
        with tempfile.TemporaryDirectory() as tmp:
            config, _, _ = make_config(tmp, "ed25519")
            raw = preview(config)
            self.assertNotIn(b"\n", raw.replace(b"\r\n", b""), "bare LF in the message")
            for line in raw.split(b"\r\n"):
                self.assertLessEqual(len(line), 998)
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            self.assertEqual(msg["From"].addresses[0].display_name, "Example Telecom")
            self.assertEqual(msg["From"].addresses[0].addr_spec, "updates@mail.example.com")
            self.assertEqual(msg["To"].addresses[0].addr_spec, "jane.doe@example.com")
            self.assertEqual(msg["Reply-To"].addresses[0].addr_spec, "support@example.com")
            self.assertEqual(str(msg["Subject"]), "Votre débit double — sans frais supplémentaires pour vous")
            self.assertIsNotNone(msg["Date"].datetime)
            self.assertRegex(msg["Message-ID"], r"^<[0-9a-f]+@mail\.example\.com>$")
            self.assertEqual(msg["MIME-Version"], "1.0")
            lu = msg["List-Unsubscribe"]
            self.assertRegex(lu, r"^<https://mail\.example\.com/unsubscribe/[A-Za-z0-9_-]+>, "
                                 r"<mailto:unsubscribe@mail\.example\.com\?subject=unsubscribe>$")
            url = lu[1:lu.index(">")]
            self.assertEqual(msg["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
            self.assertEqual(msg["List-Id"], "Updates about your services <customer-update.mail.example.com>")
            for name in ("From", "To", "Subject", "List-Unsubscribe", "List-Id", "DKIM-Signature"):
                self.assertEqual(len(msg.get_all(name)), 1, name)
            self.assertNotIn("jane.doe", url)

            self.assertEqual(msg.get_content_type(), "multipart/alternative")
            parts = list(msg.iter_parts())
            self.assertEqual([p.get_content_type() for p in parts], ["text/plain", "text/html"])
            text, html = parts[0].get_content(), parts[1].get_content()
            for body in (text, html):
                self.assertIn(url, body)
                self.assertIn("100 Example Parkway, Cary, NC 27513, USA", body)
                self.assertIn("Example Telecom, Inc.", body)
                self.assertIn("Zoë", body)
            self.assertIn("Stop all email from Example Telecom, Inc.: " + url + "?scope=all", text)
            self.assertIn('href="%s?scope=all"' % url, html)

    def test_a_message_with_a_missing_variable_is_never_produced(self):
        with tempfile.TemporaryDirectory() as tmp:
            config, _, _ = make_config(tmp, "ed25519")
            r = subprocess.run([os.path.join(BIN, "bulkmailctl"), "--config", config, "preview", "--category",
                                "customer-update", "--to", "a@example.com", "--var", "first_name=A"],
                               capture_output=True)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stdout, b"")
            self.assertIn(b"variable 'headline' is missing", r.stderr)


if __name__ == "__main__":
    unittest.main()
