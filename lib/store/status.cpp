#include "store/status.h"

namespace bulkmail {

namespace {

void add_counts(nlohmann::json& j, const StateCounts& counts) {
  for (MessageState s : kAllMessageStates) j[std::string(to_string(s))] = counts[s];
}

}  // namespace

nlohmann::json status_json(const StateCounts& counts, const std::optional<DispatchState>& dispatch,
                           bool daemon_running) {
  nlohmann::json j = nlohmann::json::object();
  add_counts(j, counts);
  nlohmann::json d = nlohmann::json::object();
  if (!dispatch) {
    d["state"] = "not running";
  } else if (!daemon_running && dispatch->state != "stopped") {
    d["state"] = "not running";
    d["last_state"] = dispatch->state;
    d["since"] = format_iso8601(dispatch->updated_at);
  } else {
    d["state"] = dispatch->state;
    if (!dispatch->detail.empty()) d["detail"] = dispatch->detail;
    d["since"] = format_iso8601(dispatch->updated_at);
    if (daemon_running && !dispatch->config_problem.empty()) {
      d["config_problem"] = dispatch->config_problem;  // a stopped daemon runs on no config
    }
  }
  j["dispatch"] = std::move(d);
  return j;
}

nlohmann::json campaign_json(const Campaign& c) {
  nlohmann::json j = {{"name", c.name},
                      {"origin", c.origin},
                      {"created", format_iso8601(c.created_at)},
                      {"last_activity", format_iso8601(c.last_activity)},
                      {"paused", c.paused_at.has_value()},
                      {"paused_since", nullptr}};
  if (c.paused_at) j["paused_since"] = format_iso8601(*c.paused_at);
  std::int64_t total = 0;
  for (MessageState s : kAllMessageStates) total += c.counts[s];
  j["total"] = total;
  add_counts(j, c.counts);
  return j;
}

}  // namespace bulkmail
