#include "config/config.h"

#include <doctest/doctest.h>

#include "crypto/dkim.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  REQUIRE_MESSAGE(pos != std::string::npos, "test setup: '" << from << "' not in the config");
  return s.replace(pos, from.size(), to);
}

std::string all_errors(const ConfigLoad& load) {
  std::string out;
  for (const auto& e : load.errors) out += e.str() + "\n";
  return out;
}

}  // namespace

TEST_CASE("the valid test config loads into frozen structs") {
  TempDir dir;
  auto load = load_config(write_config(dir));
  REQUIRE_MESSAGE(load.ok(), all_errors(load));
  const Config& c = *load.config;
  CHECK(c.database.sqlite == dir / "queue.db");
  CHECK(c.sender.organization == "Example Telecom, Inc.");
  CHECK(c.sender.from.display_name == "Example Telecom");
  CHECK(c.sender.from.address.str() == "updates@mail.example.com");
  CHECK(c.sender.return_path.str() == "updates@mail.example.com");
  REQUIRE(c.sender.reply_to);
  CHECK(c.sender.reply_to->str() == "support@example.com");
  CHECK(c.smtp.max_connections == 4);
  CHECK(c.throttle.messages_per_second == 100);
  CHECK(c.unsubscribe.url == "https://mail.example.com/unsubscribe");
  CHECK(c.unsubscribe.path == "/unsubscribe");
  REQUIRE(c.unsubscribe.keys.size() == 1);
  CHECK(c.webhook.listen_host == "127.0.0.1");
  CHECK(c.webhook.listen_port == 8025);
  CHECK(c.webhook.api_token == kTestSecret);
  CHECK(c.webhook.max_connections == 512);
  CHECK(c.categories.size() == 2);
  REQUIRE(c.category("research-invitation"));
  CHECK(c.category("research-invitation")->description == "Invitations to take part in research");
  CHECK_FALSE(c.dkim);
  CHECK(c.bounces.domain.empty());  // no VERP: the envelope sender is sender.return_path
  CHECK(c.logging.mask_addresses);
  CHECK(c.retention.message_days == 90);  // personal data has a lifetime by default
  CHECK(c.retention.event_days == 365);
  auto kept = load_config(
      write_config(dir, valid_config_yaml() + "retention: { message_days: 0, event_days: 30 }\n"));
  REQUIRE(kept.ok());
  CHECK(kept.config->retention.message_days == 0);
  CHECK(kept.config->retention.event_days == 30);
}

TEST_CASE("the shipped example config is valid once its secret files exist") {
  TempDir dir;
  // Copy the example next to secrets, pointing templates at the source tree.
  std::ifstream in(source_dir() + "/config/bulkmail.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  yaml = replace(yaml, "templates: ../templates", "templates: " + source_dir() + "/templates");
  auto load = load_config(write_config(dir, yaml));
  CHECK_MESSAGE(load.ok(), all_errors(load));
  // Its commented-out bounces block, turned on, is valid too.
  yaml =
      replace(yaml, "  # domain: bounces.mail.example.com", "  domain: bounces.mail.example.com");
  load = load_config(write_config(dir, yaml));
  REQUIRE_MESSAGE(load.ok(), all_errors(load));
  CHECK(load.config->bounces.domain == "bounces.mail.example.com");
}

TEST_CASE("the bounces block: soft-bounce run and automatic pause thresholds") {
  TempDir dir;
  auto load = load_config(write_config(dir, valid_config_yaml()));
  REQUIRE(load.ok());
  const BouncesConfig& d = load.config->bounces;  // the defaults
  CHECK(d.soft_limit == 3);
  CHECK(d.soft_window_days == 30);
  CHECK(d.min_sample == 500);
  CHECK(d.pause_complaint_ppm == 3'000);
  CHECK(d.pause_bounce_ppm == 50'000);
  CHECK(d.pause_block_ppm == 50'000);
  load = load_config(write_config(
      dir, valid_config_yaml() +
               "bounces:\n  soft_limit: 5\n  soft_window_days: 14\n  min_sample: 1000\n"
               "  pause_complaint_rate: 0.1%\n  pause_bounce_rate: 2.5%\n"
               "  pause_block_rate: 0%\n"));
  REQUIRE_MESSAGE(load.ok(), all_errors(load));
  const BouncesConfig& b = load.config->bounces;
  CHECK(b.soft_limit == 5);
  CHECK(b.soft_window_days == 14);
  CHECK(b.min_sample == 1000);
  CHECK(b.pause_complaint_ppm == 1'000);
  CHECK(b.pause_bounce_ppm == 25'000);
  CHECK(b.pause_block_ppm == 0);
  load =
      load_config(write_config(dir, valid_config_yaml() + "bounces:\n  pause_complaint_rate: 100%\n"
                                                          "  pause_bounce_rate: 0.0001%\n"));
  REQUIRE_MESSAGE(load.ok(), all_errors(load));
  CHECK(load.config->bounces.pause_complaint_ppm == 1'000'000);
  CHECK(load.config->bounces.pause_bounce_ppm == 1);
}

TEST_CASE("bad configs are refused naming the file, line and key") {
  struct Case {
    const char* name;
    std::string from, to;
    const char* expected;  // a fragment of one error line
  };
  const Case cases[] = {
      {"missing postal address", "  postal_address: 100 Example Parkway, Cary, NC 27513, USA\n", "",
       ":4:3: sender.postal_address: is required"},
      {"postal address without a number", "100 Example Parkway, Cary, NC 27513, USA",
       "Example Parkway, Cary",
       ":5:19: sender.postal_address: does not look like a postal address"},
      {"from not an address", "\"Example Telecom <updates@mail.example.com>\"",
       "\"Example Telecom <updates>\"",
       ":6:9: sender.from: is not a valid address: the address has no '@'"},
      {"header injection in organization", "organization: Example Telecom, Inc.",
       "organization: \"Example\\r\\nBcc: victim@example.org\"",
       "sender.organization: holds a line break"},
      {"plain http to a public host", "https://mail.example.com/unsubscribe",
       "http://mail.example.com/unsubscribe", ":14:8: unsubscribe.url: must use https"},
      {"unreadable secret file", "secret_file: unsubscribe.key", "secret_file: missing.key",
       ":15:16: unsubscribe.secret_file: cannot read"},
      {"unknown key in a category", "{ template: customer-update, description",
       "{ template: customer-update, descripton: x, description",
       "categories.customer-update.descripton: unknown key"},
      {"unknown top-level key", "database: queue.db\n", "database: queue.db\nthrotle: {}\n",
       ":2:1: throtle: unknown key"},
      {"negative rate", "messages_per_second: 100", "messages_per_second: -5",
       ":12:24: throttle.messages_per_second: must not be negative"},
      {"rate not a number", "messages_per_second: 100", "messages_per_second: fast",
       "throttle.messages_per_second: must be a number"},
      {"YAML syntax error", "smtp:\n", "smtp: [\n", "YAML syntax error"},
      {"smtp url of another scheme", "smtp://127.0.0.1:2525", "http://127.0.0.1:2525",
       "smtp.url: must be smtp://"},
      {"zero connections", "max_connections: 4", "max_connections: 0",
       "smtp.max_connections: is out of range"},
      {"short token expiry", "secret_file: unsubscribe.key\n",
       "secret_file: unsubscribe.key\n  token_expiry_days: 7\n",
       "unsubscribe.token_expiry_days: must be 0 (never) or at least 30"},
      {"bad listen address", "listen: 127.0.0.1:8025", "listen: localhost",
       "webhook.listen: must be IP:PORT"},
      {"no webhook connections", "listen: 127.0.0.1:8025",
       "listen: 127.0.0.1:8025\n  max_connections: 0", "webhook.max_connections: is out of range"},
      {"template folder missing", "{ template: customer-update,", "{ template: no-such-template,",
       "categories.customer-update.template: no template folder"},
      {"category name with capitals",
       "  customer-update:", "  Customer-Update:", "a category name is"},
      {"template path traversal", "{ template: customer-update,", "{ template: ../etc,",
       "not a path"},
      {"unsubscribe url with a query", "/unsubscribe\n", "/unsubscribe?x=1\n",
       "must not have a query"},
      {"unsubscribe url naming a user before the host", "https://mail.example.com/unsubscribe",
       "https://mail.example.com@other.example/unsubscribe",
       "unsubscribe.url: must not name a user before the host"},
      {"no categories", "categories:\n", "categories: {}\nx_categories:\n",
       "categories: is required"},
      {"unknown TLS mode", "  max_connections: 4\n", "  max_connections: 4\n  tls: sometimes\n",
       "smtp.tls: must be required, opportunistic or none"},
      {"AUTH user without a password", "  max_connections: 4\n",
       "  max_connections: 4\n  username: bulk\n", "smtp.username: needs smtp.password_file"},
      {"throttle for a bad domain", "messages_per_second: 100\n",
       "messages_per_second: 100\n  domains:\n    bad_domain.example: { max_connections: 2 }\n",
       "throttle.domains.bad_domain.example: is not a valid domain"},
      {"helo that is no host name", "  max_connections: 4\n",
       "  max_connections: 4\n  helo: localhost\n",
       "smtp.helo: is not a valid host name: the domain has no dot: a public mail domain needs "
       "one"},
      {"dkim signing domain that is no domain", "database: queue.db\n",
       "database: queue.db\ndkim: { domain: mail..example.com, selector: s1, key_file: k.pem }\n",
       "dkim.domain: is not a valid domain: the domain has an empty label (two dots in a row?)"},
      {"unknown key in a domain throttle", "messages_per_second: 100\n",
       "messages_per_second: 100\n  domains:\n    gmail.com: { rate: 2 }\n",
       "throttle.domains.gmail.com.rate: unknown key"},
      {"retry delays the wrong way round", "database: queue.db\n",
       "database: queue.db\nretry: { initial_delay_seconds: 600, max_delay_seconds: 60 }\n",
       "retry.max_delay_seconds: must not be less than retry.initial_delay_seconds"},
      {"unreadable relay CA file", "  max_connections: 4\n",
       "  max_connections: 4\n  ca_file: nope.pem\n", "smtp.ca_file: cannot read"},
      {"lease too short", "database: queue.db\n",
       "database: queue.db\ndaemon: { lease_seconds: 5 }\n",
       "daemon.lease_seconds: is out of range"},
      {"negative retention", "database: queue.db\n",
       "database: queue.db\nretention: { message_days: -1 }\n",
       "retention.message_days: must not be negative (allowed: 0 to 36500)"},
      {"unknown retention key", "database: queue.db\n",
       "database: queue.db\nretention: { suppression_days: 30 }\n",
       "retention.suppression_days: unknown key"},
      {"bounce domain that is no domain", "database: queue.db\n",
       "database: queue.db\nbounces: { domain: bounces_mail.example.com }\n",
       ":2:20: bounces.domain: is not a valid domain: domain label 'bounces_mail'"},
      {"bounce domain that is an address", "database: queue.db\n",
       "database: queue.db\nbounces: { domain: bounces@mail.example.com }\n",
       "bounces.domain: is not a valid domain"},
      {"bounce domain too long for a return path", "database: queue.db\n",
       "database: queue.db\nbounces: { domain: " + std::string(60, 'a') + "." +
           std::string(60, 'b') + "." + std::string(60, 'c') + "." + std::string(40, 'd') +
           ".example }\n",
       "bounces.domain: is too long: a return path b-<token>@<domain> must fit in 254 octets (at "
       "most 222 for the domain)"},
      {"bounces not a mapping", "database: queue.db\n",
       "database: queue.db\nbounces: bounces.mail.example.com\n",
       ":2:10: bounces: must be a mapping"},
      {"bounce rate without a percent sign", "database: queue.db\n",
       "database: queue.db\nbounces: { pause_complaint_rate: 0.003 }\n",
       "bounces.pause_complaint_rate: must be a percentage from 0% to 100% with at most four "
       "decimals, e.g. 0.3% (0% turns it off), not '0.003'"},
      {"bounce rate over 100%", "database: queue.db\n",
       "database: queue.db\nbounces: { pause_bounce_rate: 101% }\n",
       "bounces.pause_bounce_rate: must be a percentage"},
      {"bounce rate with five decimals", "database: queue.db\n",
       "database: queue.db\nbounces: { pause_block_rate: 0.00001% }\n",
       "bounces.pause_block_rate: must be a percentage"},
      {"soft limit of zero", "database: queue.db\n",
       "database: queue.db\nbounces: { soft_limit: 0 }\n", "bounces.soft_limit: "},
      {"unknown key in bounces", "database: queue.db\n",
       "database: queue.db\nbounces: { domian: bounces.mail.example.com }\n",
       "bounces.domian: unknown key"},
      {"a PostgreSQL URI holding a password", "database: queue.db\n",
       "database: postgresql://bulkmail:hunter2@db.example.com/bulkmail\n",
       ":1:11: database: the URI holds a password: keep it out of the config"},
      {"a PostgreSQL URI holding a password parameter", "database: queue.db\n",
       "database: postgres://db.example.com/bulkmail?password=hunter2\n",
       "database: the URI holds a password"},
      {"a PostgreSQL URI whose password holds a slash", "database: queue.db\n",
       "database: postgresql://bob:se/cret@db.example.com/bulkmail\n",
       "database: the URI's host part is not host:port"},
      {"a PostgreSQL URI libpq cannot read", "database: queue.db\n",
       "database: postgresql://db.example.com/bulkmail?sslmode\n",
       "database: not a PostgreSQL connection string libpq can read"},
      {"libpq key=value words holding a password", "database: queue.db\n",
       "database: \"host=db.example.com dbname=bulkmail password=hunter2\"\n",
       "database: the URI holds a password"},
      {"a client key's passphrase", "database: queue.db\n",
       "database: postgresql://db.example.com/bulkmail?sslpassword=hunter2\n",
       "database: the URI holds a password"},
      {"a scheme in capitals, which libpq does not take", "database: queue.db\n",
       "database: POSTGRESQL://u:hunter2@db.example.com/bulkmail\n",
       "database: not a PostgreSQL connection string libpq can read"},
      {"a scheme missing a slash", "database: queue.db\n",
       "database: postgresql:/u:hunter2@db.example.com/bulkmail\n",
       "database: not a PostgreSQL connection string libpq can read"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    TempDir dir;
    auto path = write_config(dir, replace(valid_config_yaml(), c.from, c.to));
    auto load = load_config(path);
    REQUIRE_FALSE(load.ok());
    CHECK_FALSE(load.config);
    std::string errors = all_errors(load);
    CHECK_MESSAGE(errors.find(c.expected) != std::string::npos, errors);
    CHECK_MESSAGE(errors.rfind(path, 0) == 0, "errors start with the file name: " << errors);
    CHECK_MESSAGE(errors.find("hunter2") == std::string::npos, "a secret is never repeated");
  }
}

TEST_CASE("database: a path is a SQLite file, a postgresql:// URI a PostgreSQL database") {
  TempDir dir;
  for (const char* uri :
       {"postgresql://bulkmail@db.example.com:5433/bulkmail?sslmode=verify-full",
        "postgres:///bulkmail?host=/run/postgresql&passfile=/etc/bulkmail/pgpass",
        "host=db.example.com dbname=bulkmail user=bulkmail sslmode=verify-full"}) {
    CAPTURE(uri);
    auto load = load_config(write_config(dir, replace(valid_config_yaml(), "database: queue.db\n",
                                                      std::string("database: \"") + uri + "\"\n")));
    REQUIRE_MESSAGE(load.ok(), all_errors(load));
    CHECK(load.config->database.is_postgresql());
    CHECK(load.config->database.postgresql == uri);
    CHECK(load.config->database.sqlite.empty());
    CHECK(load.database == load.config->database);
  }
  auto sqlite = load_config(write_config(dir, valid_config_yaml()));
  REQUIRE(sqlite.ok());
  CHECK_FALSE(sqlite.config->database.is_postgresql());
  CHECK(sqlite.config->database.str() == (dir / "queue.db").string());
  // A password in the URI is refused, and the error never repeats it.
  auto secret = load_config(
      write_config(dir, replace(valid_config_yaml(), "database: queue.db\n",
                                "database: postgresql://u:hunter2@db.example.com/bulkmail\n")));
  REQUIRE_FALSE(secret.ok());
  CHECK(all_errors(secret).find("hunter2") == std::string::npos);
  auto slash = load_config(
      write_config(dir, replace(valid_config_yaml(), "database: queue.db\n",
                                "database: postgresql://bob:se/cret@db.example.com/bulkmail\n")));
  REQUIRE_FALSE(slash.ok());
  CHECK(all_errors(slash).find("se/cret") == std::string::npos);
  CHECK(all_errors(slash).find("cret") == std::string::npos);
  // IPv6 hosts, several hosts and ports are what they look like.
  auto hosts = load_config(write_config(
      dir,
      replace(valid_config_yaml(), "database: queue.db\n",
              "database: \"postgresql://bulkmail@[::1]:5432,db2.example.com:5433/bulkmail\"\n")));
  CHECK_MESSAGE(hosts.ok(), all_errors(hosts));
}

TEST_CASE("every problem is reported at once") {
  TempDir dir;
  std::string yaml =
      replace(valid_config_yaml(), "messages_per_second: 100", "messages_per_second: -1");
  yaml = replace(yaml, "  postal_address: 100 Example Parkway, Cary, NC 27513, USA\n", "");
  yaml = replace(yaml, "secret_file: unsubscribe.key", "secret_file: nope.key");
  auto load = load_config(write_config(dir, yaml));
  CHECK(load.errors.size() == 3);
}

TEST_CASE("secret files must hold strong secrets, and errors never quote them") {
  TempDir dir;
  auto path = write_config(dir);
  dir.write("unsubscribe.key", "# rotation: newest first\nshort-secret-value\n");
  auto load = load_config(path);
  REQUIRE_FALSE(load.ok());
  std::string errors = all_errors(load);
  CHECK(errors.find("line 2: the secret is shorter than 32 characters") != std::string::npos);
  CHECK(errors.find("short-secret-value") == std::string::npos);

  dir.write("unsubscribe.key", "# only a comment\n\n");
  dir.write("api.token", "# only a comment\n");
  errors = all_errors(load_config(path));
  CHECK(errors.find("/unsubscribe.key holds no secret (make one with `openssl rand -hex 32`)") !=
        std::string::npos);
  CHECK(errors.find("/api.token holds no secret") != std::string::npos);
}

TEST_CASE("domains in the config are checked and normalized as an address's domain is") {
  TempDir dir;
  std::string yaml = replace(valid_config_yaml(), "  max_connections: 4\n",
                             "  max_connections: 4\n  helo: Relay.Example.COM\n");
  yaml = replace(yaml, "  messages_per_second: 100\n",
                 "  messages_per_second: 100\n  domains:\n    Bücher.Example: { max_connections: 2 "
                 "}\n");
  auto load = load_config(write_config(dir, yaml));
  REQUIRE_MESSAGE(load.ok(), all_errors(load));
  CHECK(load.config->smtp.helo == "relay.example.com");
  REQUIRE(load.config->throttle.domains.count("xn--bcher-kva.example") == 1);
  CHECK(load.config->throttle.domains.at("xn--bcher-kva.example").max_connections == 2);
}

TEST_CASE("rotation: every key in the secret file is loaded, the first signs") {
  TempDir dir;
  auto path = write_config(dir);
  std::string newer(64, 'b');
  dir.write("unsubscribe.key", newer + "\n\n" + kTestSecret + "\n");
  auto load = load_config(path);
  REQUIRE(load.ok());
  REQUIRE(load.config->unsubscribe.keys.size() == 2);
  CHECK(load.config->unsubscribe.keys[0] == newer);
}

TEST_CASE("plain http is accepted for a loopback unsubscribe host") {
  for (const char* url :
       {"http://127.0.0.1:8025/unsubscribe", "http://localhost:8025/u", "http://[::1]:8025/u"}) {
    CAPTURE(url);
    TempDir dir;
    auto load = load_config(write_config(
        dir, replace(valid_config_yaml(), "https://mail.example.com/unsubscribe", url)));
    CHECK_MESSAGE(load.ok(), all_errors(load));
  }
}

TEST_CASE("the webhook answers on the unsubscribe URL's path") {
  const std::pair<const char*, const char*> cases[] = {
      {"https://mail.example.com/unsubscribe", "/unsubscribe"},
      {"https://mail.example.com/unsubscribe/", "/unsubscribe"},
      {"https://mail.example.com/mail/opt-out", "/mail/opt-out"},
      {"https://unsubscribe.example.com", ""},
      {"https://unsubscribe.example.com/", ""},
  };
  for (const auto& [url, path] : cases) {
    CAPTURE(url);
    TempDir dir;
    auto load = load_config(write_config(
        dir, replace(valid_config_yaml(), "https://mail.example.com/unsubscribe", url)));
    REQUIRE_MESSAGE(load.ok(), all_errors(load));
    CHECK(load.config->unsubscribe.path == path);
  }
}

TEST_CASE("a missing config file is an error, not an exception") {
  auto load = load_config("/nonexistent/bulkmail.yaml");
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0].str().find("/nonexistent/bulkmail.yaml: cannot read the config file") == 0);
}

TEST_CASE("dkim: the key is loaded and checked at config time") {
  TempDir dir;
  std::string base = valid_config_yaml() +
                     "dkim:\n  domain: Mail.Example.com\n  selector: s2026\n  key_file: dkim.pem\n";
  auto path = write_config(dir, base);
  auto missing = load_config(path);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.errors[0].str().find("dkim.key_file: cannot read") != std::string::npos);

  dir.write("dkim.pem", "-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n");
  CHECK(load_config(path).errors.at(0).str().find("not a PEM private key") != std::string::npos);

  std::ifstream small(source_dir() + "/tests/data/rfc8463/rsa.pem");
  std::string pem((std::istreambuf_iterator<char>(small)), std::istreambuf_iterator<char>());
  dir.write("dkim.pem", pem);
  CHECK(load_config(path).errors.at(0).str().find(
            "the RSA key has 1024 bits; at least 2048 are required") != std::string::npos);

  REQUIRE(std::system(
              ("openssl genpkey -algorithm ed25519 -out " + (dir / "dkim.pem").string()).c_str()) ==
          0);
  auto ok = load_config(path);
  REQUIRE_MESSAGE(ok.ok(), (ok.ok() ? "" : ok.errors[0].str()));
  REQUIRE(ok.config->dkim);
  CHECK(ok.config->dkim->domain == "mail.example.com");
  CHECK(ok.config->dkim->key->algorithm() == DkimKey::Algorithm::ed25519_sha256);
  auto alignment = [](const ConfigLoad& l) {
    for (const auto& w : l.warnings)
      if (w.str().find("not aligned") != std::string::npos) return true;
    return false;
  };
  CHECK_FALSE(alignment(ok));  // signing as the From domain itself
  // A parent of the From domain (updates@mail.example.com) is aligned too; another domain is not.
  write_config(dir, replace(base, "domain: Mail.Example.com", "domain: example.com"));
  CHECK_FALSE(alignment(load_config(path)));
  write_config(dir, replace(base, "domain: Mail.Example.com", "domain: esp-signing.example.net"));
  auto other = load_config(path);
  REQUIRE(other.ok());  // a warning, not an error: the relay may sign aligned as well
  CHECK(alignment(other));
}

TEST_CASE("a key given twice, at any level, is an error naming both lines") {
  TempDir dir;
  // Line 3 opens the first sender block, line 12 holds throttle.messages_per_second.
  std::string yaml = replace(valid_config_yaml(), "messages_per_second: 100\n",
                             "messages_per_second: 100\n  messages_per_second: 5\n");
  yaml = replace(yaml, "{ template: customer-update,",
                 "{ template: customer-update, template: research-invitation,");
  yaml += "sender:\n  organization: Someone Else\n";  // appended: line 23
  auto path = write_config(dir, yaml);
  auto load = load_config(path);
  REQUIRE_FALSE(load.ok());
  std::string errors = all_errors(load);
  CHECK_MESSAGE(errors.find(path + ":13:3: throttle.messages_per_second: is given twice, on lines "
                                   "12 and 13") != std::string::npos,
                errors);
  CHECK_MESSAGE(errors.find("categories.customer-update.template: is given twice, on lines 21 "
                            "and 21") != std::string::npos,
                errors);
  CHECK_MESSAGE(errors.find(path + ":23:1: sender: is given twice, on lines 3 and 23: only the "
                                   "first would be used") != std::string::npos,
                errors);
  CHECK(load.errors.size() == 3);  // all at once
}

TEST_CASE("secret files: writable by others is an error, readable by others a warning") {
  using std::filesystem::perms;
  struct Case {
    const char* file;
    perms mode;
    const char* error;    // a fragment of the one error, or nullptr
    const char* warning;  // a fragment of the one warning, or nullptr
  };
  const Case cases[] = {
      {"unsubscribe.key", perms(0600), nullptr, nullptr},
      {"unsubscribe.key", perms(0640), nullptr, nullptr},
      {"unsubscribe.key", perms(0400), nullptr, nullptr},
      {"unsubscribe.key", perms(0644), nullptr,
       "unsubscribe.secret_file: DIR/unsubscribe.key has mode 0644: every local user can read the "
       "secret; run `chmod 600 DIR/unsubscribe.key`"},
      {"api.token", perms(0604), nullptr,
       "webhook.api_token_file: DIR/api.token has mode 0604: every local user can read"},
      {"unsubscribe.key", perms(0666),
       "unsubscribe.secret_file: DIR/unsubscribe.key has mode 0666: every local user can change "
       "the secret; run `chmod 600 DIR/unsubscribe.key`",
       nullptr},
      {"unsubscribe.key", perms(0660),
       "unsubscribe.secret_file: DIR/unsubscribe.key has mode 0660: its group can change the "
       "secret; run `chmod 600",
       nullptr},
      {"api.token", perms(0622),
       ":18:19: webhook.api_token_file: DIR/api.token has mode 0622: every local user can change",
       nullptr},
  };
  for (const Case& c : cases) {
    CAPTURE(c.file);
    CAPTURE(static_cast<int>(c.mode));
    TempDir dir;
    auto path = write_config(dir);
    std::filesystem::permissions(dir / c.file, c.mode);
    auto expand = [&](std::string s) {
      for (std::size_t p; (p = s.find("DIR")) != std::string::npos;)
        s.replace(p, 3, dir.path().string());
      return s;
    };
    auto load = load_config(path);
    std::string errors = all_errors(load), warnings;
    // Only the secret files' warnings (the test config also keeps the example's sender).
    std::erase_if(load.warnings,
                  [](const ConfigError& w) { return w.key.rfind("sender.", 0) == 0; });
    for (const auto& w : load.warnings) warnings += w.str() + "\n";
    if (c.error) {
      CHECK(load.errors.size() == 1);
      CHECK_MESSAGE(errors.find(expand(c.error)) != std::string::npos, errors);
    } else {
      CHECK_MESSAGE(load.ok(), errors);
    }
    if (c.warning) {
      CHECK(load.warnings.size() == 1);
      CHECK_MESSAGE(warnings.find(expand(c.warning)) != std::string::npos, warnings);
      CHECK_MESSAGE(warnings.rfind(path, 0) == 0, "a warning names the config file: " << warnings);
    } else {
      CHECK_MESSAGE(load.warnings.empty(), warnings);
    }
  }
}

TEST_CASE("the SMTP password and the DKIM key are secret files too") {
  TempDir dir;
  std::string yaml = replace(valid_config_yaml(), "  max_connections: 4\n",
                             "  max_connections: 4\n  username: bulk\n  password_file: smtp.pw\n");
  auto path = write_config(dir, yaml);
  dir.write("smtp.pw", "relay-password\n");
  std::filesystem::permissions(dir / "smtp.pw", std::filesystem::perms(0666));
  auto load = load_config(path);
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0].str().find("smtp.password_file: " + (dir / "smtp.pw").string() +
                                  " has mode 0666") != std::string::npos);
}

TEST_CASE("a folder given as the config is an error, not an exception") {
  TempDir dir;
  ConfigLoad load;
  REQUIRE_NOTHROW(load = load_config(dir.path()));
  REQUIRE(load.errors.size() == 1);
  CHECK(load.errors[0].str() ==
        dir.path().string() + ": cannot read the config file: it is a folder");
}

TEST_CASE("the example's untouched sender is a warning at --check") {
  TempDir dir;
  auto load = load_config(write_config(dir));  // the test config is the example's sender
  REQUIRE(load.ok());
  std::string warnings;
  for (const auto& w : load.warnings) warnings += w.str() + "\n";
  CHECK(warnings.find("sender.organization: is still the example's") != std::string::npos);
  CHECK(warnings.find("sender.postal_address: is still the example's") != std::string::npos);
  CHECK(warnings.find("sender.from: uses a reserved example domain (mail.example.com)") !=
        std::string::npos);
  std::string own =
      replace(replace(replace(valid_config_yaml(), "Example Telecom, Inc.", "Acme Fiber LLC"),
                      "100 Example Parkway, Cary, NC 27513, USA",
                      "12 Main Street, Springfield, IL 62701, USA"),
              "updates@mail.example.com", "updates@mail.acme-fiber.test");
  TempDir other;
  auto mine = load_config(write_config(other, own));
  REQUIRE(mine.ok());
  for (const auto& w : mine.warnings) CHECK(w.str().find("example") == std::string::npos);
}

TEST_CASE("bounces.domain turns VERP on: checked and normalized as any domain") {
  TempDir dir;
  auto load = load_config(
      write_config(dir, valid_config_yaml() + "bounces:\n  domain: Bounces.Mail.Example.COM\n" +
                            dkim_config_block(dir)));  // signed: no warning about bounces
  REQUIRE_MESSAGE(load.ok(), all_errors(load));
  CHECK(load.config->bounces.domain == "bounces.mail.example.com");
  CHECK(load.config->sender.return_path.str() == "updates@mail.example.com");  // kept for no VERP
  for (const auto& w : load.warnings) CHECK(w.str().find("bounces") == std::string::npos);

  // An empty block is no VERP, as no block is.
  TempDir empty;
  auto none = load_config(write_config(empty, valid_config_yaml() + "bounces: {}\n"));
  REQUIRE_MESSAGE(none.ok(), all_errors(none));
  CHECK(none.config->bounces.domain.empty());
}

TEST_CASE(
    "a bounce domain outside the From domain is a warning: its CFBL-Address would be ignored") {
  // The From domain itself and a subdomain are aligned; a sibling or another domain is not.
  const std::pair<const char*, bool> cases[] = {
      {"mail.example.com", false},     {"bounces.mail.example.com", false},
      {"a.b.mail.example.com", false}, {"bounces.example.com", true},
      {"xmail.example.com", true},     {"bounces.example.net", true},
  };
  for (const auto& [domain, warned] : cases) {
    CAPTURE(domain);
    TempDir dir;
    auto load = load_config(write_config(
        dir, valid_config_yaml() + "bounces:\n  domain: " + std::string(domain) + "\n"));
    REQUIRE_MESSAGE(load.ok(), all_errors(load));
    std::string warnings;
    for (const auto& w : load.warnings) warnings += w.str() + "\n";
    CHECK_MESSAGE((warnings.find("bounces.domain: " + std::string(domain) +
                                 " is not the From domain mail.example.com or below it") !=
                   std::string::npos) == warned,
                  warnings);
  }
}

TEST_CASE("a bounce domain without DKIM is a warning: the CFBL-Address would go out unsigned") {
  TempDir dir;
  const std::string bounces = "bounces:\n  domain: bounces.mail.example.com\n";
  auto unsigned_load = load_config(write_config(dir, valid_config_yaml() + bounces));
  REQUIRE_MESSAGE(unsigned_load.ok(), all_errors(unsigned_load));
  std::string warnings;
  for (const auto& w : unsigned_load.warnings) warnings += w.str() + "\n";
  CHECK_MESSAGE(warnings.find("bounces.domain: is set but dkim is not") != std::string::npos,
                warnings);
  TempDir signed_dir;
  auto signed_load = load_config(
      write_config(signed_dir, valid_config_yaml() + bounces + dkim_config_block(signed_dir)));
  REQUIRE_MESSAGE(signed_load.ok(), all_errors(signed_load));
  for (const auto& w : signed_load.warnings) CHECK(w.str().find("bounces") == std::string::npos);
}

TEST_CASE("a config error is one printable line, whatever bytes the file held") {
  ConfigError e{"bulkmail.yaml", 4, 1, "\x1b[31mkey\x1b[0m", "unknown key\r\nforged line"};
  CHECK(e.str() == "bulkmail.yaml:4:1: ?[31mkey?[0m: unknown key??forged line");
}

TEST_CASE(
    "a config holding itself through an alias, or nested too deep, is an error, not a crash") {
  TempDir dir;
  auto load = [&](const std::string& text) {
    auto path = dir.path() / "bulkmail.yaml";
    std::ofstream(path) << text;
    return load_config(path);
  };
  auto cycle = load("x: &a [*a]\n");
  REQUIRE_FALSE(cycle.ok());
  CHECK(cycle.errors.front().str().find("holds itself through an alias") != std::string::npos);
  std::string deep = "x: " + std::string(40, '[') + std::string(40, ']') + "\n";
  CHECK(load(deep).errors.front().str().find("nested more than 32 levels") != std::string::npos);
  // Aliases repeating a part: 10^6 values from a few lines.
  auto laughs = load(
      "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, "
      "*c]\n"
      "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n");
  CHECK(laughs.errors.front().str().find("larger than 100000 values") != std::string::npos);
}
