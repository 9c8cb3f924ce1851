"""Installing bulkmail the way an operator does: `cmake --install` into a staging root, the systemd
unit checked by systemd-analyze (verify, and the offline security rating), and the .deb built by
cpack, inspected with dpkg-deb and checked by lintian."""
import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

SRC = os.environ["BULKMAIL_SOURCE_DIR"]
BUILD = os.environ["BULKMAIL_BUILD_DIR"]
SECRET = "0123456789abcdef" * 4


def run(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)


class Installed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.root = os.path.join(cls.tmp.name, "root")
        r = run("cmake", "--install", BUILD, "--prefix", "/usr", env=dict(os.environ, DESTDIR=cls.root))
        assert r.returncode == 0, r.stderr
        cls.unit = os.path.join(cls.root, "lib", "systemd", "system", "bulkmaild.service")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/"))

    def test_the_debian_layout(self):
        for p in ("/usr/bin/bulkmaild", "/usr/bin/bulkmailctl", "/etc/bulkmail/bulkmail.yaml",
                  "/usr/share/bulkmail/templates/customer-update/html",
                  "/usr/share/bulkmail/templates/research-invitation/subject",
                  "/lib/systemd/system/bulkmaild.service", "/usr/lib/sysusers.d/bulkmail.conf",
                  "/usr/share/man/man8/bulkmaild.8.gz", "/usr/share/man/man1/bulkmailctl.1.gz",
                  "/usr/share/doc/bulkmail/copyright"):
            self.assertTrue(os.path.isfile(self.path(p)), p)
        self.assertTrue(os.access(self.path("/usr/bin/bulkmaild"), os.X_OK))
        with open(self.path("/lib/systemd/system/bulkmaild.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/usr/bin/bulkmaild --config /etc/bulkmail/bulkmail.yaml\n", unit)
        self.assertIsNone(re.search(r"@[A-Z_]+@", unit))  # every @VAR@ was filled in

    def test_the_installed_config_and_templates_pass_check(self):
        conf = self.path("/etc/bulkmail/bulkmail.yaml")
        with open(conf) as f:
            yaml = f.read()
        self.assertIn("database: /var/lib/bulkmail/bulkmail.db\n", yaml)
        self.assertIn("templates: /usr/share/bulkmail/templates\n", yaml)
        # Run the installed daemon's --check on it, with the state and templates in the staging root.
        work = os.path.join(self.tmp.name, "check")
        os.makedirs(work, exist_ok=True)
        for name in ("unsubscribe.key", "api.token"):
            with open(os.path.join(work, name), "w") as f:
                f.write(SECRET + "\n")
        yaml = yaml.replace("/var/lib/bulkmail/bulkmail.db", os.path.join(work, "bulkmail.db"))
        yaml = yaml.replace("/usr/share/bulkmail/templates", self.path("/usr/share/bulkmail/templates"))
        with open(os.path.join(work, "bulkmail.yaml"), "w") as f:
            f.write(yaml)
        r = run(self.path("/usr/bin/bulkmaild"), "--config", os.path.join(work, "bulkmail.yaml"), "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("is valid", r.stdout)
        # The shipped example's sender is valid, but an operator who forgot to change it is told.
        self.assertIn("sender.postal_address: is still the example's", r.stderr)

    def unit_at_staged_paths(self):
        # The unit names /usr/bin/bulkmaild; point a copy at the staged binary so that verify can
        # check that it exists and runs, and let man find the staged man pages.
        with open(self.unit) as f:
            text = f.read().replace("/usr/bin/bulkmaild", self.path("/usr/bin/bulkmaild"))
        copy = os.path.join(self.tmp.name, "bulkmaild.service")
        with open(copy, "w") as f:
            f.write(text)
        return copy

    def test_systemd_analyze_verify_is_clean(self):
        r = run("systemd-analyze", "verify", self.unit_at_staged_paths(),
                env=dict(os.environ, MANPATH=self.path("/usr/share/man")))
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_the_sandbox_rates_ok(self):
        r = run("systemd-analyze", "security", "--offline=true", self.unit_at_staged_paths())
        m = re.search(r"Overall exposure level for bulkmaild\.service: ([\d.]+) (\w+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        self.assertLessEqual(float(m.group(1)), 1.5, r.stdout)
        self.assertEqual(m.group(2), "OK")
        # The settings the issue names are all there.
        with open(self.unit) as f:
            unit = f.read()
        for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "TimeoutStopSec=",
                        "StateDirectory=bulkmail", "ConfigurationDirectory=bulkmail", "UMask=0077",
                        "CapabilityBoundingSet=\n", "NoNewPrivileges=yes", "ProtectSystem=strict",
                        "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes", "ProtectClock=yes",
                        "ProtectKernelTunables=yes", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                        "SystemCallFilter=@system-service", "MemoryDenyWriteExecute=yes",
                        "ExecReload=/bin/kill -HUP $MAINPID", "--check\n"):
            self.assertIn(setting, unit)


class Package(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = os.path.join(cls.tmp.name, "dist")
        r = run("cpack", "-G", "DEB", "-B", cls.out, cwd=BUILD)
        assert r.returncode == 0, r.stdout + r.stderr
        debs = [f for f in os.listdir(cls.out) if f.endswith(".deb")]
        assert len(debs) == 1, os.listdir(cls.out)
        cls.deb = os.path.join(cls.out, debs[0])

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_the_readme_install_steps_work_in_order(self):
        """The README's "Install on a server", step by step, on this machine: dpkg installs the
        package for real (the test runs as root, as CI does) and purges it at the end."""
        if os.geteuid() != 0:
            self.skipTest("installing a package needs root")
        if run("dpkg-query", "-W", "-f", "${Status}", "bulkmail").stdout.startswith("install ok"):
            self.skipTest("a bulkmail package is installed on this machine: not touching it")
        as_bulkmail = ("runuser", "-u", "bulkmail", "--")  # the README's `sudo -u bulkmail`
        self.addCleanup(run, "dpkg", "--purge", "bulkmail")
        r = run("dpkg", "-i", self.deb)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The database's folder exists before the service ever ran, as the unit will keep it.
        st = os.stat("/var/lib/bulkmail")
        self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name,
                          stat.S_IMODE(st.st_mode)), ("bulkmail", "bulkmail", 0o750))
        with open("/lib/systemd/system/bulkmaild.service") as f:
            self.assertIn("StateDirectoryMode=0750\n", f.read())
        for secret in ("/etc/bulkmail/unsubscribe.key", "/etc/bulkmail/api.token"):
            st = os.stat(secret)
            self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)),
                             ("bulkmail", 0o600), secret)
        # Step 1: make the config yours, then check it as the daemon's user. This creates the
        # database.
        with open("/etc/bulkmail/bulkmail.yaml") as f:
            conf = f.read()
        conf = conf.replace("Example Telecom, Inc.", "Ridgeline Broadband, LLC")
        with open("/etc/bulkmail/bulkmail.yaml", "w") as f:
            f.write(conf)
        r = run(*as_bulkmail, "bulkmaild", "--check")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        st = os.stat("/var/lib/bulkmail/bulkmail.db")
        self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, stat.S_IMODE(st.st_mode)),
                         ("bulkmail", 0o600))
        # Step 4: queue mail as the daemon's user.
        lists = os.path.join(self.tmp.name, "lists")
        os.makedirs(lists, exist_ok=True)
        os.chmod(self.tmp.name, 0o755)
        os.chmod(lists, 0o755)
        with open(os.path.join(lists, "list.csv"), "w") as f:
            f.write("email,first_name,headline,body\njane@example.com,Jane,Your plan,Details\n")
        os.chmod(os.path.join(lists, "list.csv"), 0o644)
        r = run(*as_bulkmail, "bulkmailctl", "import", "--category", "customer-update",
                os.path.join(lists, "list.csv"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("campaign list: queued 1", r.stdout)
        r = run(*as_bulkmail, "bulkmailctl", "status", "--json")
        self.assertEqual(json.loads(r.stdout)["queued"], 1, r.stderr)
        # Purging removes the secrets and the database, as the README warns.
        r = run("dpkg", "--purge", "bulkmail")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertFalse(os.path.exists("/var/lib/bulkmail"))
        self.assertFalse(os.path.exists("/etc/bulkmail/unsubscribe.key"))

    def test_the_deb_has_its_dependencies_conffile_and_scripts_and_lintian_finds_no_error(self):
        with tempfile.TemporaryDirectory() as out:
            deb = self.deb
            info = run("dpkg-deb", "--info", deb).stdout
            depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)
            for lib in ("libcurl4", "libsqlite3-0", "libyaml-cpp0.7", "libssl3", "libidn2-0", "libsystemd0",
                        "libprometheus-cpp-core1.0", "libgmime-3.0-0", "openssl"):
                self.assertIn(lib, depends)
            # /metrics needs prometheus-cpp's core only, not its HTTP server or push client.
            for lib in ("libprometheus-cpp-pull", "libprometheus-cpp-push", "civetweb"):
                self.assertNotIn(lib, depends)
            control = os.path.join(out, "control")
            run("dpkg-deb", "--control", deb, control)
            with open(os.path.join(control, "conffiles")) as f:
                self.assertEqual(f.read().split(), ["/etc/bulkmail/bulkmail.yaml"])
            with open(os.path.join(control, "postinst")) as f:
                postinst = f.read()
            self.assertIn("openssl rand -hex 32", postinst)
            self.assertIn("chmod 0600", postinst)
            self.assertIn("systemd-sysusers bulkmail.conf", postinst)
            contents = run("dpkg-deb", "--contents", deb).stdout
            for p in ("./usr/bin/bulkmaild", "./lib/systemd/system/bulkmaild.service",
                      "./usr/share/man/man8/bulkmaild.8.gz", "./etc/bulkmail/bulkmail.yaml"):
                self.assertIn(p, contents)
            lint = run("lintian", "--tag-display-limit", "0", deb)
            errors = [l for l in (lint.stdout + lint.stderr).splitlines() if l.startswith("E:")]
            self.assertEqual(errors, [], lint.stdout)


if __name__ == "__main__":
    unittest.main()
