"""A loopback port for a server a test starts (shared by the tests and tests/postgres_server.py,
tests/postfix_instance.py)."""
import random
import socket


def free_port():
    """A TCP port on 127.0.0.1 that nothing is bound to now. Drawn below the kernel's ephemeral
    range, where the kernel's own choice (bind to port 0) comes from: a client's connection
    anywhere on the machine takes its local port from that range too, and could take the port in
    the moment between this choice and the server's bind (the server then fails to start)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    # A machine whose ephemeral range starts low leaves no room below it: draw from 10000-20000.
    top = low if low > 11000 else 20000
    for _ in range(1000):
        port = random.randrange(10000, top)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port on 127.0.0.1 between 10000 and %d" % top)
