#include <doctest/doctest.h>

#include <filesystem>

#include "process.h"
#include "test_config.h"

using namespace bulkmail::test;

TEST_CASE("bulkmaild --check validates and creates the database without contacting the relay") {
  TempDir dir;
  auto config = write_config(dir);
  auto r = run_process({bin_dir() + "/bulkmaild", "--config", config, "--check"});
  CHECK_MESSAGE(r.status == 0, r.err);
  CHECK(r.out.find("is valid") != std::string::npos);
  CHECK(std::filesystem::exists(dir / "queue.db"));
}

TEST_CASE("bulkmaild --check reports every config problem and exits 1") {
  TempDir dir;
  auto config = write_config(dir, "database: q.db\ntemplates: /nonexistent\nsender: {}\n");
  auto r = run_process({bin_dir() + "/bulkmaild", "--config", config, "--check"});
  CHECK(r.status == 1);
  CHECK(r.err.find("sender.postal_address: is required") != std::string::npos);
  CHECK(r.err.find("templates: no such folder") != std::string::npos);
  CHECK(r.err.find("smtp: is required") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "q.db"));
}

TEST_CASE("the config path comes from $BULKMAIL_CONFIG") {
  TempDir dir;
  auto config = write_config(dir);
  auto r = run_process({bin_dir() + "/bulkmaild", "--check"}, "", {"BULKMAIL_CONFIG=" + config});
  CHECK_MESSAGE(r.status == 0, r.err);
  auto bad = run_process({bin_dir() + "/bulkmaild", "--check"}, "",
                         {"BULKMAIL_CONFIG=" + (dir / "none.yaml").string()});
  CHECK(bad.status == 1);
  CHECK(bad.err.find("none.yaml: cannot read the config file") != std::string::npos);
}

TEST_CASE("bulkmaild refuses a config whose connections cannot fit the descriptor limit") {
  TempDir dir;
  auto config = write_config(dir);  // webhook.max_connections: 512 by default
  // A hard limit of 128 descriptors cannot hold 512 webhook connections: refused, with numbers.
  auto r = run_process({"/usr/bin/timeout", "10", "/usr/bin/prlimit", "--nofile=128:128",
                        bin_dir() + "/bulkmaild", "--config", config});
  CHECK(r.status == 1);
  CHECK(r.err.find("file descriptors, but the hard limit is 128") != std::string::npos);
}

TEST_CASE("bulkmaild's config errors mask an address the file happens to hold") {
  TempDir dir;
  std::string yaml = valid_config_yaml();
  yaml.replace(yaml.find("sender:\n"), 8, "sender:\n  jane.doe@example.com: 1\n");
  auto config = write_config(dir, yaml);
  auto r = run_process({bin_dir() + "/bulkmaild", "--config", config, "--check"});
  CHECK(r.status == 1);
  CHECK(r.err.find("unknown key") != std::string::npos);
  CHECK(r.err.find("jane.doe@") == std::string::npos);
  CHECK(r.err.find("***@example.com: unknown key") != std::string::npos);
}

TEST_CASE("bulkmaild: --version, and bad usage exits 2") {
  auto v = run_process({bin_dir() + "/bulkmaild", "--version"});
  CHECK(v.status == 0);
  CHECK(v.out == std::string("bulkmaild ") + BULKMAIL_TEST_VERSION + "\n");
  auto bad = run_process({bin_dir() + "/bulkmaild", "--bogus"});
  CHECK(bad.status == 2);
  CHECK(bad.err.find("--bogus") != std::string::npos);
}

TEST_CASE("bulkmaild --check reports every template problem at once") {
  TempDir dir;
  // Two templates, each broken its own way: a part missing, and an unescaped value in html.
  dir.write("tpl/first/subject", "News {{headline}}\n");
  dir.write("tpl/second/subject", "Study {{study}}\n");
  dir.write("tpl/second/text", "{{study}} {{unsubscribe_url}} {{postal_address}}\n");
  dir.write("tpl/second/html", "<p>{{{study}}}</p>");
  std::string yaml = valid_config_yaml();
  yaml.replace(yaml.find("templates: "),
               yaml.find('\n', yaml.find("templates: ")) - yaml.find("templates: "),
               "templates: tpl");
  yaml.replace(yaml.find("{ template: customer-update,"), 28, "{ template: first,");
  yaml.replace(yaml.find("{ template: research-invitation,"), 32, "{ template: second,");
  auto config = write_config(dir, yaml);
  auto r = run_process({bin_dir() + "/bulkmaild", "--config", config, "--check"});
  CHECK(r.status == 1);
  CHECK_MESSAGE(r.err.find("first/text") != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("first/html") != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("second/html") != std::string::npos, r.err);
}
