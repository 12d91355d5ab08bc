"""Helpers for the TLS tests: a private certificate authority made with the openssl command (server
certificates for a host, expired ones), subscribers behind TLS, and the daemon serving HTTPS."""

import http.client
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import threading

from cebtest import CEBROKER, Daemon, Subscriber, wait_for


class CA:
    """A certificate authority of the test's own, in a temporary directory (removed by close())."""

    def __init__(self, name="cebtest CA"):
        self.dir = tempfile.mkdtemp(prefix="cebtls-")
        self.key = self.path("ca.key")
        self.cert = self.path("ca.pem")
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                      "-out", self.cert, "-days", "2", "-subj", "/CN=%s" % name)
        with open(self.path("index.txt"), "w"):
            pass
        with open(self.path("serial"), "w") as f:
            f.write("1000\n")
        with open(self.path("ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = ca_default\n[ca_default]\ndir = %s\ndatabase = $dir/index.txt\n"
                    "new_certs_dir = $dir\nserial = $dir/serial\ndefault_md = sha256\n"
                    "policy = pol\ncopy_extensions = none\nunique_subject = no\n"
                    "[pol]\ncommonName = supplied\n" % self.dir)
        self.n = 0

    def path(self, name):
        return os.path.join(self.dir, name)

    def pem(self):
        with open(self.cert) as f:
            return f.read()

    def _openssl(self, *args):
        p = subprocess.run(["openssl"] + list(args), capture_output=True)
        if p.returncode != 0:
            raise AssertionError("openssl %s: %s" % (args[0], p.stderr.decode()))

    def issue(self, cn="localhost", sans=("DNS:localhost", "IP:127.0.0.1"), expired=False):
        """A key and a certificate signed by this CA: (cert path, key path)."""
        self.n += 1
        base = self.path("srv%d" % self.n)
        self._openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", base + ".key",
                      "-out", base + ".csr", "-subj", "/CN=%s" % cn)
        with open(base + ".ext", "w") as f:
            f.write("subjectAltName=%s\n" % ",".join(sans))
        dates = (["-startdate", "20200101000000Z", "-enddate", "20200102000000Z"] if expired
                 else ["-days", "1"])
        self._openssl("ca", "-batch", "-notext", "-config", self.path("ca.cnf"), "-cert", self.cert,
                      "-keyfile", self.key, "-in", base + ".csr", "-out", base + ".pem",
                      "-extfile", base + ".ext", *dates)
        return base + ".pem", base + ".key"

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def client_context(ca, minimum=ssl.TLSVersion.TLSv1_2, maximum=None):
    ctx = ssl.create_default_context(cafile=ca.cert)
    ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    return ctx


class TlsSubscriber(Subscriber):
    """cebtest.Subscriber behind TLS with the given certificate; its url is https://localhost:port
    (or https://<host>:port)."""

    def __init__(self, cert, key, host="localhost"):
        super().__init__()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        # Wrapped before any connection came: the server thread accepts on the TLS socket. A failed
        # handshake (a client that does not trust us) is an OSError the server drops.
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = "https://%s:%d" % (host, self.port)


class TlsDaemon(Daemon):
    """The daemon with --tls-cert/--tls-key: its url is https://localhost:port."""

    def __init__(self, yaml_text, cert, key, args=(), log_level="debug"):
        self.dir = tempfile.mkdtemp(prefix="cebtest-")
        self.config = os.path.join(self.dir, "config.yaml")
        with open(self.config, "w") as f:
            f.write(yaml_text)
        self.log_lines = []
        self.proc = subprocess.Popen(
            [CEBROKER, "run", "-f", self.config, "--listen", "127.0.0.1:0", "--log-level", log_level,
             "--tls-cert", cert, "--tls-key", key] + list(args),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        m = wait_for(lambda: self._find(r"listening on https://127\.0\.0\.1:(\d+)")
                     or (self.proc.poll() is not None and "exited"), 10, what="daemon start")
        if m == "exited":
            raise AssertionError("cebroker exited at start (%s):\n%s" % (self.proc.returncode, self.log()))
        self.port = int(m.group(1))
        self.url = "https://localhost:%d" % self.port
        m = self._find(r"listening on http://127\.0\.0\.1:(\d+) too")
        self.plain_port = int(m.group(1)) if m else None

    def wait_log(self, pattern, timeout=10):
        return wait_for(lambda: self._find(pattern), timeout, what="log line /%s/" % pattern)


def https_post(port, ctx, path, headers, body=b"", method="POST", conn=None):
    """One request over HTTPS to localhost:port (on conn when given, which stays open):
    (status, headers, body)."""
    c = conn or http.client.HTTPSConnection("localhost", port, context=ctx, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        if conn is None:
            c.close()


def peer_cn(port, ctx):
    """The common name of the certificate the server at localhost:port shows to a new connection."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            subject = dict(x[0] for x in t.getpeercert()["subject"])
            return subject.get("commonName")


def log_matches(text, pattern):
    return re.search(pattern, text) is not None
