#include "status.h"

namespace bulkmail {

nlohmann::json status_json(const StateCounts& counts, const std::optional<DispatchState>& dispatch,
                           bool daemon_running) {
  nlohmann::json j = nlohmann::json::object();
  for (MessageState s : kAllMessageStates) j[std::string(to_string(s))] = counts[s];
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
  }
  j["dispatch"] = std::move(d);
  return j;
}

}  // namespace bulkmail
