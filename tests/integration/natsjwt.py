"""NATS decentralized authentication for the tests, made here as `nsc` would: nkeys (Ed25519 keys in
NATS's base32 encoding) and the operator, account and user JWTs (nats-io/jwt v2), a user's creds file,
and the nats-server settings that trust them (operator mode, a memory resolver). Uses the Python
`cryptography` package for Ed25519."""

import base64
import hashlib
import json
import time

try:
    import cryptography  # noqa: F401
except ImportError:  # Debian's python3-cryptography, for another python3 (as cebtest.pika_module)
    import sys
    sys.path.append("/usr/lib/python3/dist-packages")
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

PREFIX_SEED = 18 << 3
PREFIX = {"operator": 14 << 3, "account": 0, "user": 20 << 3}


def _crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _b32(raw):
    raw += _crc16(raw).to_bytes(2, "little")
    return base64.b32encode(raw).decode().rstrip("=")


def _b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class NKey:
    def __init__(self, kind):
        self.kind = kind
        self.key = Ed25519PrivateKey.generate()
        raw = self.key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
        pub = self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                 serialization.PublicFormat.Raw)
        p = PREFIX[kind]
        self.public = _b32(bytes([p]) + pub)
        self.seed = _b32(bytes([PREFIX_SEED | (p >> 5), (p & 31) << 3]) + raw)


def jwt(issuer, subject, nats, name):
    """A JWT for subject (an NKey), signed by issuer (an NKey)."""
    claims = {"jti": "", "iat": int(time.time()), "iss": issuer.public, "name": name,
              "sub": subject.public, "nats": dict(nats, version=2)}
    claims["jti"] = base64.b32encode(hashlib.new("sha512_256", json.dumps(
        claims, separators=(",", ":")).encode()).digest()).decode().rstrip("=")
    head = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = _b64(json.dumps(claims, separators=(",", ":")).encode())
    sig = _b64(issuer.key.sign(("%s.%s" % (head, body)).encode()))
    return "%s.%s.%s" % (head, body, sig)


class Authority:
    """An operator, one account with JetStream, and users of it."""

    def __init__(self):
        self.operator = NKey("operator")
        self.account = NKey("account")
        self.operator_jwt = jwt(self.operator, self.operator, {"type": "operator"}, "cebtest")
        unlimited = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                     "wildcards": True, "conn": -1, "leaf": -1, "mem_storage": -1,
                     "disk_storage": -1, "streams": -1, "consumer": -1}
        self.account_jwt = jwt(self.operator, self.account,
                               {"type": "account", "limits": unlimited}, "cebtest-account")
        # JetStream needs a system account
        self.system = NKey("account")
        self.system_jwt = jwt(self.operator, self.system, {"type": "account"}, "SYS")

    def server_conf(self, port, store):
        return ("listen: 127.0.0.1:%d\noperator: %s\nsystem_account: %s\nresolver: MEMORY\n"
                "resolver_preload: {\n  %s: %s\n  %s: %s\n}\njetstream: {store_dir: %s}\n"
                % (port, self.operator_jwt, self.system.public, self.account.public,
                   self.account_jwt, self.system.public, self.system_jwt, store))

    def creds(self, name="cebroker"):
        """A user's creds file, as nsc writes it."""
        user = NKey("user")
        token = jwt(self.account, user, {"type": "user", "pub": {}, "sub": {}, "subs": -1,
                                         "data": -1, "payload": -1}, name)
        return ("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
                "************************* IMPORTANT *************************\n"
                "NKEY Seed printed below can be used to sign and prove identity.\n"
                "NKEYs are sensitive and should be treated as secrets.\n\n"
                "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n\n"
                "*************************************************************\n"
                % (token, user.seed))
