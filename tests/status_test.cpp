// The lines and JSON `bulkmailctl status` and GET /api/v1/status give of several daemons.
#include "store/status.h"

#include <doctest/doctest.h>

using namespace bulkmail;

namespace {
constexpr UnixMillis kNow = 1'795'000'000'000;
}  // namespace

TEST_CASE("status: each daemon's word, and one gone silent is called dead or cut off") {
  std::vector<DaemonState> daemons = {
      {"mail1:41:aa", "running", "", kNow - 60'000, kNow - 2'000},
      {"mail2:42:bb", "paused", "the database is not answering (x)", kNow - 5'000, kNow - 4'000},
      {"mail3:43:cc", "running", "", kNow - 600'000, kNow - kDaemonSilentMs},
      {"mail4:44:dd", "stopped", "", kNow - 7'000, kNow - 7'000},
  };
  auto lines = daemon_lines(daemons, kNow);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] ==
        "daemon mail1:41:aa: running since " + format_iso8601(kNow - 60'000) + ", seen 2 s ago");
  CHECK(lines[1] == "daemon mail2:42:bb: paused (the database is not answering (x)) since " +
                        format_iso8601(kNow - 5'000) + ", seen 4 s ago");
  CHECK(lines[2].rfind("daemon mail3:43:cc: not seen since " +
                           format_iso8601(kNow - kDaemonSilentMs) + " (it last said running)",
                       0) == 0);
  CHECK(lines[3] == "daemon mail4:44:dd: stopped at " + format_iso8601(kNow - 7'000));

  nlohmann::json j = daemons_json(daemons, kNow);
  REQUIRE(j.size() == 4);
  CHECK(j[0]["owner"] == "mail1:41:aa");
  CHECK(j[0]["alive"] == true);
  CHECK(j[1]["detail"] == "the database is not answering (x)");
  CHECK(j[2]["alive"] == false);
  CHECK(j[3]["alive"] == false);
  CHECK(j[3]["seen"] == format_iso8601(kNow - 7'000));
}

TEST_CASE("status: the JSON lists daemons only where several share the database") {
  StateCounts counts;
  DispatchState d{"running", "", kNow, ""};
  CHECK_FALSE(status_json(counts, d, true).contains("daemons"));
  nlohmann::json j =
      status_json(counts, d, true, {{"mail1:41:aa", "running", "", kNow, kNow}}, kNow);
  REQUIRE(j.contains("daemons"));
  CHECK(j["daemons"][0]["state"] == "running");
}

TEST_CASE("status: the cluster's line is what its daemons do together, not the last word") {
  std::vector<DaemonState> daemons = {
      {"mail1:41:aa", "stopped", "", kNow - 1'000, kNow - 1'000},
      {"mail2:42:bb", "running", "", kNow - 60'000, kNow - 2'000},
      {"mail3:43:cc", "paused", "relay down", kNow - 5'000, kNow - 4'000},
      {"mail4:44:dd", "running", "", kNow - 900'000, kNow - 600'000},
  };
  DispatchState c = cluster_dispatch(daemons, kNow);
  CHECK(c.state == "running");  // one stopping is not the cluster stopping
  CHECK(c.detail == "4 daemons: 1 running, 1 paused, 1 not seen, 1 stopped");
  CHECK(c.updated_at == kNow - 5'000);
  daemons[1].state = "stopped";
  c = cluster_dispatch(daemons, kNow);
  CHECK(c.state == "paused");
  daemons[2].state = "stopped";
  CHECK(cluster_dispatch(daemons, kNow).state == "stopped");
  CHECK(cluster_dispatch({daemons[0]}, kNow).detail == "1 daemon: 1 stopped");
}
