#!/usr/bin/python3
"""A scripted SMTP relay for bulkmail's tests, on loopback only (Debian's python3-aiosmtpd).

What it answers depends on the recipient's local part:
  bounce*  550 5.1.1 at RCPT TO        grey*   451 4.7.1 at RCPT TO
  busy*    421 4.7.0 at RCPT TO        spam*   554 5.7.1 after DATA
  throttle* 450 4.7.1 too many recipients at RCPT TO (a server's rate limit: the domain slows down)
  stall*   waits 30 s after DATA       drop*   drops the connection during DATA
  anything else: 250, and the message is stored in OUT/<n>.eml with a line in OUT/received.log.
--data-delay MS waits before answering every end of DATA (a slow relay).
--auth USER:PASSWORD requires AUTH (PLAIN or LOGIN, allowed without TLS on loopback) before MAIL.
--tls CERT:KEY offers STARTTLS with that certificate.
--refuse-starttls offers STARTTLS (with --tls) but answers it 454, as a relay whose TLS broke does.
It prints "ready PORT" once listening and runs until terminated.
"""
import argparse
import asyncio
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, out, data_delay):
        self.out = out
        self.data_delay = data_delay
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0].lower()
        if local.startswith("bounce"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local.startswith("grey"):
            return "451 4.7.1 <%s>: Greylisted, try again later" % address
        if local.startswith("throttle"):
            return "450 4.7.1 <%s>: Error: too many recipients from [127.0.0.1]" % address
        if local.startswith("busy"):
            return "421 4.7.0 Too many connections, closing"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0].split("@")[0].lower()
        if rcpt.startswith("spam"):
            return "554 5.7.1 Message rejected as spam"
        if rcpt.startswith("stall"):
            await asyncio.sleep(30)
        if rcpt.startswith("drop"):
            server.transport.abort()
            return "451 4.3.0 connection dropped"  # never reaches the client: the socket is gone
        if self.data_delay:
            await asyncio.sleep(self.data_delay / 1000.0)
        with self.lock:
            self.count += 1
            n = self.count
        if self.out:
            with open(os.path.join(self.out, "%d.eml" % n), "wb") as f:
                f.write(envelope.original_content)
            with open(os.path.join(self.out, "received.log"), "a") as f:
                f.write("%s %s %s\n" % (envelope.rcpt_tos[0], envelope.mail_from,
                                         "tls" if session.ssl else "plain"))
        return "250 2.0.0 Ok: queued as %d" % n


class RefusingStartTLS(SMTP):
    """Offers STARTTLS in its EHLO answer, then refuses it."""

    async def smtp_STARTTLS(self, arg):
        await self.push("454 4.7.0 TLS not available due to temporary reason")


class RefusingStartTLSController(Controller):
    def factory(self):
        return RefusingStartTLS(self.handler, **self.SMTP_kwargs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--out", default="")
    p.add_argument("--data-delay", type=int, default=0)
    p.add_argument("--auth", default="")
    p.add_argument("--tls", default="")
    p.add_argument("--refuse-starttls", action="store_true")
    a = p.parse_args()
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    port = a.port
    if port == 0:
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
    kwargs = {}
    if a.auth:
        from aiosmtpd.smtp import AuthResult
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok)

        kwargs = dict(authenticator=authenticator, auth_required=True, auth_require_tls=False)
    if a.tls:
        import ssl
        cert, key = a.tls.split(":", 1)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs["tls_context"] = context
    controller_class = RefusingStartTLSController if a.refuse_starttls else Controller
    controller = controller_class(Handler(a.out, a.data_delay), hostname="127.0.0.1", port=port,
                                  data_size_limit=10 * 1024 * 1024, decode_data=False, **kwargs)
    controller.start()
    print("ready %d" % port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    sys.exit(main())
