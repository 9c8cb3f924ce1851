"""The code's layout: lib/ is in subsystem folders whose #includes point one way only, down this
order, and bulkmailctl links neither delivery nor the web. A folder may include itself and the
folders before it; store/sqlite and store/postgres (the backends of store/'s interface) may be
included only by the programs and the tests, never by anything else in lib/."""
import os
import re
import tempfile
import unittest

SRC = os.environ.get("BULKMAIL_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORDER = ["base", "crypto", "bounce", "config", "store", "store/sqlite", "store/postgres", "compose", "intake",
         "feedback", "delivery", "web"]
BACKENDS = ("store/sqlite", "store/postgres")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def folder_of(path):
    """The layer a path under lib/ belongs to ("store/sqlite/x.h" -> "store/sqlite")."""
    parts = path.split("/")
    if len(parts) >= 3 and "/".join(parts[:2]) in ORDER:
        return "/".join(parts[:2])
    return parts[0] if len(parts) >= 2 else None


def may_include(src, dst):
    if src == dst:
        return True
    if dst in BACKENDS:
        return False  # only the programs and the tests reach a backend itself
    if src in BACKENDS:
        return ORDER.index(dst) <= ORDER.index("store")
    return ORDER.index(dst) < ORDER.index(src)


def violations(lib):
    """Every #include in `lib` that breaks the order: (file, line, included)."""
    found = []
    for dirpath, _, files in os.walk(lib):
        for f in sorted(files):
            if not f.endswith((".h", ".cpp")):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, lib).replace(os.sep, "/")
            src = folder_of(rel)
            with open(path) as fh:
                text = fh.read()
            for m in INCLUDE.finditer(text):
                inc = m.group(1)
                line = text.count("\n", 0, m.start()) + 1
                dst = folder_of(inc)
                if src not in ORDER:
                    found.append((rel, line, inc + " (file outside every folder)"))
                elif dst not in ORDER:
                    found.append((rel, line, inc + " (not named by its folder)"))
                elif not may_include(src, dst):
                    found.append((rel, line, inc))
    return found


class LayoutTest(unittest.TestCase):
    def test_every_include_in_lib_points_down(self):
        self.assertEqual(violations(os.path.join(SRC, "lib")), [])

    def test_the_checker_finds_an_include_that_points_up_or_sideways(self):
        with tempfile.TemporaryDirectory() as lib:
            def write(path, text):
                os.makedirs(os.path.dirname(os.path.join(lib, path)), exist_ok=True)
                with open(os.path.join(lib, path), "w") as f:
                    f.write(text)
            write("base/log.h", '#include "config/config.h"\n')            # up
            write("delivery/sender_pool.cpp", '#include "store/sqlite/sqlite_store.h"\n'
                                              '#include "store/store.h"\n')  # behind the interface
            write("store/sqlite/sqlite_store.h", '#include "store/store.h"\n#include "compose/mime.h"\n')
            write("web/webhook.cpp", '#include "store/status.h"\n#include "log.h"\n')
            self.assertEqual(sorted(violations(lib)), [
                ("base/log.h", 1, "config/config.h"),
                ("delivery/sender_pool.cpp", 1, "store/sqlite/sqlite_store.h"),
                ("store/sqlite/sqlite_store.h", 2, "compose/mime.h"),
                ("web/webhook.cpp", 2, "log.h (not named by its folder)"),
            ])

    def test_every_folder_is_a_library_and_the_order_is_the_same_in_cmake(self):
        with open(os.path.join(SRC, "lib", "CMakeLists.txt")) as f:
            cmake = f.read()
        for folder in ORDER:
            name = "bulkmail_" + folder.replace("/", "_")
            self.assertIn("bulkmail_library(%s\n" % name, cmake)
            sources = [l.strip() for l in cmake.split("bulkmail_library(%s\n" % name)[1].split(")")[0].splitlines()]
            for s in sources:
                self.assertEqual(folder_of(s), folder, s)
        on_disk = sorted(os.path.relpath(os.path.join(d, f), os.path.join(SRC, "lib"))
                         for d, _, fs in os.walk(os.path.join(SRC, "lib")) for f in fs if f.endswith(".cpp"))
        for cpp in on_disk:
            self.assertIn("  %s\n" % cpp, cmake, cpp + " is in no library")

    def test_bulkmailctl_links_neither_delivery_nor_the_web(self):
        with open(os.path.join(SRC, "cli", "CMakeLists.txt")) as f:
            cmake = f.read()
        self.assertIn("bulkmail_intake", cmake)
        for lib in ("bulkmail_delivery", "bulkmail_web", "bulkmail "):
            self.assertNotIn(lib, cmake)
        sources = [f for f in os.listdir(os.path.join(SRC, "cli")) if f.endswith((".cpp", ".h"))]
        self.assertIn("bulkmailctl.cpp", sources)
        for name in sources:
            with open(os.path.join(SRC, "cli", name)) as f:
                for inc in INCLUDE.findall(f.read()):
                    self.assertNotIn(folder_of(inc), ("delivery", "web"), name + ": " + inc)


if __name__ == "__main__":
    unittest.main()
