"""A loopback port for a test server that may be killed and started again on the same port.

A port the kernel hands out for bind(0) lies in the ephemeral range, the range it also takes local
ports of outgoing connections from. While a killed server is down, any connection on the machine
(another test, the daemon reconnecting) can be given its port, and the restarted server then fails
with EADDRINUSE. So take a port below that range, where the kernel never puts an outgoing
connection, and check that nothing listens there now."""

import random
import socket


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _any_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_port():
    low = _ephemeral_low()
    first = 10000 if low > 12000 else 1024
    if low - first < 1000:
        return _any_port()  # a machine whose ephemeral range starts low: no room below it
    for _ in range(1000):
        port = random.randrange(first, low)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port below the ephemeral range (%d)" % low)
