#include "restart_keys.h"

#include <doctest/doctest.h>

#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

TEST_CASE("a reload names each changed key that waits for a restart, and only those") {
  TempDir dir;
  auto load = load_config(write_config(dir));
  REQUIRE(load.ok());
  const Config& running = *load.config;
  CHECK(needs_restart(running, running).empty());

  struct Row {
    const char* key;
    void (*change)(Config&);
  };
  for (Row r :
       {Row{"database", [](Config& c) { c.database.sqlite = "/elsewhere/queue.db"; }},
        Row{"smtp.max_connections", [](Config& c) { c.smtp.max_connections += 1; }},
        Row{"webhook.listen", [](Config& c) { c.webhook.listen_port += 1; }},
        Row{"webhook.listen", [](Config& c) { c.webhook.listen_host = "::1"; }},
        Row{"webhook.max_connections", [](Config& c) { c.webhook.max_connections = 9; }},
        Row{"webhook.max_connections_per_client",
            [](Config& c) { c.webhook.max_connections_per_client = 9; }},
        Row{"webhook.loopback_reserve", [](Config& c) { c.webhook.loopback_reserve = 9; }}}) {
    CAPTURE(r.key);
    Config fresh = running;
    r.change(fresh);
    CHECK(needs_restart(running, fresh) == std::vector<std::string>{r.key});
  }
  // What a reload does take in place is not named.
  Config fresh = running;
  fresh.throttle.messages_per_second = 7;
  fresh.smtp.host = "relay.example.net";
  fresh.sender.organization = "Another Name";
  CHECK(needs_restart(running, fresh).empty());
}

TEST_CASE("the restart warning lists the keys in plain words") {
  CHECK(restart_warning({}).empty());
  CHECK(restart_warning({"database"}) == "database changed but takes effect only after a restart");
  CHECK(restart_warning({"database", "webhook.listen"}) ==
        "database and webhook.listen changed but take effect only after a restart");
  CHECK(restart_warning({"a", "b", "c"}) ==
        "a, b and c changed but take effect only after a restart");
}
