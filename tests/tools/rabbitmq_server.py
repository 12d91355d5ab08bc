#!/usr/bin/env python3
"""A private rabbitmq-server for the tests: on 127.0.0.1 with free ports, its own epmd, data, logs,
config and Erlang cookie in a directory of the caller's, stopped by its pid (never the system service,
never by name: other people run the same server on this machine).

  rabbitmq_server.py start DIR     start (or start again with the same ports and data), wait until it
                                   takes AMQP connections, print "PORT BEAM_PID EPMD_PID"
  rabbitmq_server.py kill DIR      SIGKILL the server (a crash); epmd keeps running
  rabbitmq_server.py stop DIR      stop the server and its epmd
  rabbitmq_server.py ctl DIR ARGS  rabbitmqctl ARGS against that server (its node, epmd and cookie)

Importable too: start(dir) -> port, kill(dir), stop(dir), ctl(dir, *args) -> stdout."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from freeport import free_port  # noqa: E402 (ports a restart can take again)

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the script itself: the wrapper switches user
START_TIMEOUT = 90


def _state(d):
    p = os.path.join(d, "state.json")
    if os.path.exists(p):
        with open(p) as f:
            return json.load(f)
    return {}


def _save(d, st):
    with open(os.path.join(d, "state.json"), "w") as f:
        json.dump(st, f)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie of ours is not alive
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _server_path():
    if os.path.exists(SERVER):
        return SERVER
    return shutil.which("rabbitmq-server")


def available():
    return _server_path() is not None and shutil.which("epmd") is not None


def _last_words(path):
    """The line of server.out that says why the node stopped (the temporary directory is gone
    by the time anyone reads a CI log)."""
    try:
        with open(path, errors="replace") as f:
            lines = [l.strip() for l in f if l.strip()]
    except OSError:
        return "no output"
    why = [l for l in lines if "Kernel pid terminated" in l or "init terminating" in l]
    return (why or lines[-3:] or ["no output"])[-1][:800]


def start(d):
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    st = _state(d)
    if not st:
        st = {"port": free_port(), "dist": free_port(), "epmd_port": free_port(),
              "node": "cebtest%d@localhost" % os.getpid()}
    env = dict(os.environ)
    env.update({
        "HOME": d,
        "RABBITMQ_NODENAME": st["node"],
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(st["port"]),
        "RABBITMQ_DIST_PORT": str(st["dist"]),
        "ERL_EPMD_PORT": str(st["epmd_port"]),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
        "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
        "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(d, "advanced.config"),
        "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
        "RABBITMQ_PID_FILE": os.path.join(d, "rabbit.pid"),
        "RABBITMQ_LOGS": os.path.join(d, "log", "rabbit.log"),
        "ERL_CRASH_DUMP": os.path.join(d, "erl_crash.dump"),
        # run erl in place of the script (its pid is the server's), without a shell on stdin
        "RUNNING_UNDER_SYSTEMD": "1",
    })
    env.pop("RABBITMQ_ALLOW_INPUT", None)
    with open(os.path.join(d, "enabled_plugins"), "w") as f:
        f.write("[].\n")
    with open(os.path.join(d, "rabbitmq.conf"), "w") as f:
        f.write("loopback_users = none\nlog.console = false\n")
    # More settings from the caller (a TLS listener: listeners.ssl.default, ssl_options.*).
    extra = os.path.join(d, "extra.conf")
    if os.path.exists(extra):
        with open(extra) as src, open(os.path.join(d, "rabbitmq.conf"), "a") as f:
            f.write(src.read())
    open(os.path.join(d, "rabbitmq-env.conf"), "a").close()
    if not st.get("epmd_pid") or not _alive(st["epmd_pid"]):
        epmd = subprocess.Popen(["epmd", "-port", str(st["epmd_port"]), "-address", "127.0.0.1"],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        st["epmd_pid"] = epmd.pid
        time.sleep(0.2)
    out = open(os.path.join(d, "server.out"), "ab")
    # In DIR, so that a node that stops on a fault leaves its erl_crash.dump there and not in
    # whatever directory the caller runs in (a checkout, a build directory).
    srv = subprocess.Popen([_server_path()], env=env, cwd=d, stdin=subprocess.DEVNULL, stdout=out,
                           stderr=out, start_new_session=True)
    st["pid"] = srv.pid
    _save(d, st)
    deadline = time.time() + START_TIMEOUT
    while time.time() < deadline:
        if srv.poll() is not None:
            raise RuntimeError("rabbitmq-server exited with %s: %s" %
                               (srv.returncode, _last_words(os.path.join(d, "server.out"))))
        try:
            # the listener opens last, once the node has booted
            socket.create_connection(("127.0.0.1", st["port"]), timeout=1).close()
            return st["port"]
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("rabbitmq-server not ready after %ds" % START_TIMEOUT)


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _wait_gone(pid, secs):
    end = time.time() + secs
    while time.time() < end:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            if not _alive(pid):
                return True
        time.sleep(0.05)
    return False


def kill(d):
    st = _state(d)
    if st.get("pid"):
        _kill(st["pid"], signal.SIGKILL)
        _wait_gone(st["pid"], 10)


def ctl(d, *args):
    """rabbitmqctl against this server: the script itself (the wrapper switches to the rabbitmq
    user and its cookie), with the node's name, epmd port and HOME (the cookie). Its stdout; an
    error raises with its stderr."""
    d = os.path.abspath(d)
    st = _state(d)
    env = dict(os.environ, HOME=d, ERL_EPMD_PORT=str(st["epmd_port"]))
    p = subprocess.run([os.path.join(os.path.dirname(_server_path()), "rabbitmqctl"), "-n",
                        st["node"], "-q"] + list(args), env=env, cwd=d, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("rabbitmqctl %s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout


def stop(d):
    st = _state(d)
    if st.get("pid") and _alive(st["pid"]):
        _kill(st["pid"], signal.SIGTERM)
        if not _wait_gone(st["pid"], 20):
            _kill(st["pid"], signal.SIGKILL)
            _wait_gone(st["pid"], 5)
    if st.get("epmd_pid"):
        _kill(st["epmd_pid"], signal.SIGKILL)
        _wait_gone(st["epmd_pid"], 5)


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "ctl":
        sys.stdout.write(ctl(sys.argv[2], *sys.argv[3:]))
        sys.exit(0)
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "kill", "stop"):
        sys.stderr.write(__doc__)
        sys.exit(2)
    if sys.argv[1] == "start":
        port = start(sys.argv[2])
        st = _state(sys.argv[2])
        print(port, st["pid"], st["epmd_pid"])
    elif sys.argv[1] == "kill":
        kill(sys.argv[2])
    else:
        stop(sys.argv[2])
