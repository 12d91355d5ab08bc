"""Installing like a daemon: `make install DESTDIR=...` puts the binary, both man pages, the systemd
unit and the example configuration in place (and `make uninstall` takes them away); the man pages
render without a warning and describe every option of every command and every resource kind; the
unit is hardened and `systemd-analyze verify` accepts it; the daemon tells systemd READY=1 once it
listens and STOPPING=1 when it drains. Run as root or not."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import unittest

from cebtest import CEBROKER, Daemon, broker_yaml, main, run_cli, wait_for

TOP = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BUILD = os.environ.get("top_builddir") or os.path.dirname(os.path.abspath(CEBROKER))
BINDIR = os.environ.get("CEB_BINDIR", "/usr/local/bin")
MANDIR = os.environ.get("CEB_MANDIR", "/usr/local/share/man")
SYSCONFDIR = os.environ.get("CEB_SYSCONFDIR", "/usr/local/etc")
UNITDIR = os.environ.get("CEB_UNITDIR", "/usr/local/lib/systemd/system")
SERVICE_TYPE = os.environ.get("CEB_SERVICE_TYPE", "notify")
COMMANDS = ("run", "validate", "send", "display", "replay")


def quiet_env(**extra):
    """The environment for a nested make or man: no jobserver of the outer make, no pager."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(MANPAGER="cat", PAGER="cat", MANWIDTH="100", LC_ALL="C.UTF-8")
    env.update(extra)
    return env


def roff_text(path):
    """A man page's source with roff's escapes for '-' and fonts taken out, for searching."""
    with open(path) as f:
        text = f.read()
    text = text.replace("\\-", "-").replace("\\e", "\\")
    return re.sub(r"\\f[BIRP]", "", text)


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("make", "man", "systemd-analyze"):
            assert shutil.which(tool), "%s not found: scripts/install-deps installs it" % tool
        cls.dest = tempfile.mkdtemp(prefix="cebtest-install-")
        p = subprocess.run(["make", "-C", BUILD, "install", "DESTDIR=" + cls.dest],
                           capture_output=True, env=quiet_env(), timeout=300)
        cls.install_rc, cls.install_out = p.returncode, (p.stdout + p.stderr).decode()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dest + parts[0], *parts[1:])

    def setUp(self):
        self.assertEqual(self.install_rc, 0, self.install_out[-3000:])

    def test_make_install_puts_every_file_in_place(self):
        expected = [
            self.path(BINDIR, "cebroker"),
            self.path(MANDIR, "man1", "cebroker.1"),
            self.path(MANDIR, "man5", "cebroker-resources.5"),
            self.path(UNITDIR, "cebroker.service"),
            self.path(SYSCONFDIR, "cebroker", "cebroker.yaml"),
        ]
        for f in expected:
            self.assertTrue(os.path.isfile(f), f)
        installed = sorted(os.path.join(d, n) for d, _, names in os.walk(self.dest) for n in names)
        self.assertEqual(installed, sorted(expected))
        self.assertTrue(os.access(expected[0], os.X_OK))
        p = subprocess.run([expected[0], "version"], capture_output=True)
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(), r"^cebroker \d+\.\d+\.\d+\n$")

    def test_the_example_configuration_validates_with_the_installed_binary(self):
        p = subprocess.run([self.path(BINDIR, "cebroker"), "validate", "-f",
                            self.path(SYSCONFDIR, "cebroker")], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(p.stdout.decode(), "ok: 1 broker, 1 trigger\n")

    def test_a_second_install_keeps_an_edited_configuration_and_uninstall_leaves_it(self):
        dest = tempfile.mkdtemp(prefix="cebtest-reinstall-")
        try:
            conf = os.path.join(dest + SYSCONFDIR, "cebroker", "cebroker.yaml")
            os.makedirs(os.path.dirname(conf))
            with open(conf, "w") as f:
                f.write("# the operator's\n")
            for target in ("install", "uninstall"):
                p = subprocess.run(["make", "-C", BUILD, target, "DESTDIR=" + dest],
                                   capture_output=True, env=quiet_env(), timeout=300)
                self.assertEqual(p.returncode, 0, (p.stdout + p.stderr).decode()[-3000:])
                with open(conf) as f:
                    self.assertEqual(f.read(), "# the operator's\n", target)
            left = [os.path.join(d, n) for d, _, names in os.walk(dest) for n in names]
            self.assertEqual(left, [conf])
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    def test_the_man_pages_render_without_warnings(self):
        for page in (self.path(MANDIR, "man1", "cebroker.1"),
                     self.path(MANDIR, "man5", "cebroker-resources.5")):
            p = subprocess.run(["man", "--warnings", "-l", page], capture_output=True,
                               env=quiet_env(), timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            self.assertEqual(p.stderr.decode(), "", page)
            self.assertIn("SEE ALSO", p.stdout.decode(), page)
            self.assertNotIn("@", re.sub(r"\S+@\S+", "", p.stdout.decode()), page)

    def test_the_man_page_names_the_installed_configuration_directory(self):
        text = roff_text(self.path(MANDIR, "man1", "cebroker.1"))
        self.assertIn(SYSCONFDIR + "/cebroker/", text)
        self.assertNotIn("@sysconfdir@", text)

    def test_cebroker_1_describes_every_option_every_command_prints_in_its_help(self):
        text = roff_text(self.path(MANDIR, "man1", "cebroker.1"))
        p = subprocess.run([CEBROKER, "--help"], capture_output=True)
        commands = re.findall(r"^  (\w+) ", p.stdout.decode(), re.M)
        self.assertEqual(sorted(commands), sorted(COMMANDS + ("version",)))
        for cmd in commands:
            self.assertRegex(text, r"(?m)^\.SS cebroker %s$" % cmd)
        missing = []
        for cmd in COMMANDS:
            rc, out, err = run_cli(cmd, "--help")
            self.assertEqual(rc, 0, cmd)
            out = out.split("\nExample")[0]  # the examples show other commands' options
            options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out))
            options |= set(re.findall(r"(?<![\w-])(-[a-zA-Z])(?=[ ,])", out))
            self.assertIn({"run": "-f", "validate": "-f", "display": "--listen",
                           "replay": "--trigger"}.get(cmd, "--to"), options, cmd)
            section = re.search(r"(?ms)^\.SS cebroker %s$(.*?)(?=^\.S[SH] )" % cmd, text).group(1)
            for opt in sorted(options):
                if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), section):
                    missing.append("%s %s" % (cmd, opt))
        self.assertEqual(missing, [], "options missing from cebroker(1)")

    def test_cebroker_resources_5_has_a_section_for_every_kind_the_loader_supports(self):
        text = roff_text(self.path(MANDIR, "man5", "cebroker-resources.5"))
        f = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
        try:
            f.write("apiVersion: v1\nmetadata:\n  name: a\n")  # no kind: the error lists them
            f.close()
            rc, out, err = run_cli("validate", "-f", f.name)
        finally:
            os.unlink(f.name)
        supported = re.search(r"\(supported: (.*)\)$", err, re.M).group(1)
        kinds = re.findall(r"(\w+) \(([^)]*)\)", supported)
        self.assertGreater(len(kinds), 10)
        missing = [k for k, api in kinds
                   if not re.search(r"(?m)^\.SS %s \(%s[ )]" % (k, re.escape(api.split(" or ")[0])), text)]
        self.assertEqual(missing, [], "kinds missing from cebroker-resources(5)")

    def test_the_unit_is_hardened_and_runs_the_installed_binary(self):
        with open(self.path(UNITDIR, "cebroker.service")) as f:
            unit = f.read()
        for line in ("Type=" + SERVICE_TYPE, "DynamicUser=yes", "ProtectSystem=strict",
                     "NoNewPrivileges=yes", "ProtectHome=yes", "PrivateTmp=yes",
                     "StateDirectory=cebroker", "ExecReload=/bin/kill -HUP $MAINPID",
                     "ExecStart=%s/cebroker run -f %s/cebroker/ $CEBROKER_OPTS" % (BINDIR, SYSCONFDIR)):
            self.assertRegex(unit, r"(?m)^%s$" % re.escape(line))
        self.assertRegex(unit, r"(?m)^RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX")
        self.assertNotIn("@", re.sub(r"(?m)^#.*$", "", unit).replace("@system-service", ""))

    def test_systemd_analyze_verify_accepts_the_unit(self):
        # verify runs nothing, but wants ExecStart's binary to exist and the man pages of
        # Documentation= to be found: the installed ones, under DESTDIR.
        with open(self.path(UNITDIR, "cebroker.service")) as f:
            unit = f.read().replace(BINDIR + "/cebroker", self.path(BINDIR, "cebroker"))
        d = tempfile.mkdtemp(prefix="cebtest-unit-")
        try:
            path = os.path.join(d, "cebroker.service")
            with open(path, "w") as f:
                f.write(unit)
            p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, timeout=120,
                               env=quiet_env(MANPATH=self.path(MANDIR)))
            out = (p.stdout + p.stderr).decode()
            self.assertEqual(p.returncode, 0, out)
            self.assertEqual(out, "")  # a directive it cannot parse is only a warning
            # and it does check: a misspelt directive is reported
            with open(path, "w") as f:
                f.write(unit.replace("ProtectSystem=strict", "ProtectSystem=strictly"))
            p = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, timeout=120,
                               env=quiet_env(MANPATH=self.path(MANDIR)))
            self.assertIn("strictly", (p.stdout + p.stderr).decode())
        finally:
            shutil.rmtree(d, ignore_errors=True)


class Notify(unittest.TestCase):
    """sd_notify: what systemd hears on $NOTIFY_SOCKET (a datagram socket of the test's)."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cebtest-notify-")
        self.sock_path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.sock.settimeout(0.05)
        self.heard = []

    def tearDown(self):
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def listen(self):
        try:
            while True:
                self.heard.append(self.sock.recv(4096).decode())
        except socket.timeout:
            pass
        return self.heard

    def test_ready_once_listening_and_stopping_when_draining(self):
        d = Daemon(broker_yaml(), env={"NOTIFY_SOCKET": self.sock_path})
        if SERVICE_TYPE != "notify":
            # built without libsystemd: the unit is Type=simple and nothing is sent
            d.stop()
            self.assertEqual(self.listen(), [])
            return
        wait_for(lambda: "READY=1" in "".join(self.listen()), 10, what="READY=1")
        self.assertNotIn("STOPPING=1", "".join(self.heard))
        d.stop()
        self.listen()
        self.assertEqual([m for m in self.heard if m in ("READY=1", "STOPPING=1")],
                         ["READY=1", "STOPPING=1"])

    def test_without_notify_socket_nothing_is_sent_and_the_daemon_runs(self):
        env = {"NOTIFY_SOCKET": ""}
        d = Daemon(broker_yaml(), env=env)
        st, _, _ = d.post("/healthz", {}, b"", "GET")
        self.assertEqual(st, 200)
        with open("/proc/%d/maps" % d.proc.pid) as f:
            self.assertNotIn("libsystemd", f.read())  # opened only for a service manager
        d.stop()
        self.assertEqual(self.listen(), [])


if __name__ == "__main__":
    main()
