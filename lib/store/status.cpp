#include "store/status.h"

#include <algorithm>
#include <utility>

namespace bulkmail {

namespace {

void add_counts(nlohmann::json& j, const StateCounts& counts) {
  for (MessageState s : kAllMessageStates) j[std::string(to_string(s))] = counts[s];
}

}  // namespace

nlohmann::json status_json(const StateCounts& counts, const std::optional<DispatchState>& dispatch,
                           bool daemon_running, const std::vector<DaemonState>& daemons,
                           UnixMillis now) {
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
  if (!daemons.empty()) j["daemons"] = daemons_json(daemons, now);
  return j;
}

namespace {
bool alive(const DaemonState& d, UnixMillis now) {
  return d.state != "stopped" && now - d.seen_at < kDaemonSilentMs;
}
}  // namespace

DispatchState cluster_dispatch(const std::vector<DaemonState>& daemons, UnixMillis now) {
  int running = 0, paused = 0, stopped = 0, silent = 0;
  UnixMillis since = 0;
  for (const DaemonState& d : daemons) {
    if (d.state == "stopped") {
      ++stopped;
    } else if (!alive(d, now)) {
      ++silent;
    } else {
      ++(d.state == "paused" ? paused : running);
      since = std::max(since, d.since);
    }
  }
  DispatchState c;
  c.state = running ? "running" : paused ? "paused" : "stopped";
  if (!running && !paused) {
    for (const DaemonState& d : daemons) since = std::max(since, d.since);
  }
  c.updated_at = since;
  c.detail = std::to_string(daemons.size()) + (daemons.size() == 1 ? " daemon: " : " daemons: ");
  std::string parts;
  auto part = [&](int n, const char* what) {
    if (n) parts += (parts.empty() ? "" : ", ") + std::to_string(n) + " " + what;
  };
  part(running, "running");
  part(paused, "paused");
  part(silent, "not seen");
  part(stopped, "stopped");
  c.detail += parts;
  return c;
}

nlohmann::json daemons_json(const std::vector<DaemonState>& daemons, UnixMillis now) {
  nlohmann::json out = nlohmann::json::array();
  for (const DaemonState& d : daemons) {
    out.push_back({{"owner", d.owner},
                   {"state", d.state},
                   {"detail", d.detail},
                   {"since", format_iso8601(d.since)},
                   {"seen", format_iso8601(d.seen_at)},
                   {"alive", alive(d, now)}});
  }
  return out;
}

std::vector<std::string> daemon_lines(const std::vector<DaemonState>& daemons, UnixMillis now) {
  std::vector<std::string> lines;
  for (const DaemonState& d : daemons) {
    std::string line = "daemon " + d.owner + ": ";
    if (d.state == "stopped") {
      line += "stopped at " + format_iso8601(d.since);
    } else if (!alive(d, now)) {
      line += "not seen since " + format_iso8601(d.seen_at) + " (it last said " + d.state +
              "): dead, or cut off from the database; its messages go back to the queue as "
              "their leases run out";
    } else {
      line += d.state + (d.detail.empty() ? "" : " (" + d.detail + ")") + " since " +
              format_iso8601(d.since) + ", seen " + std::to_string((now - d.seen_at) / 1000) +
              " s ago";
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

nlohmann::json campaign_json(const Campaign& c) {
  nlohmann::json j = {{"name", c.name},
                      {"origin", c.origin},
                      {"created", format_iso8601(c.created_at)},
                      {"last_activity", format_iso8601(c.last_activity)},
                      {"paused", c.paused_at.has_value()},
                      {"paused_since", nullptr},
                      {"pause_reason", nullptr}};
  if (c.paused_at) j["paused_since"] = format_iso8601(*c.paused_at);
  // A resume clears the reason; should one outlive its pause, it is not shown as one.
  if (c.paused_at && !c.pause_reason.empty()) j["pause_reason"] = c.pause_reason;
  std::int64_t total = 0;
  for (MessageState s : kAllMessageStates) total += c.counts[s];
  j["total"] = total;
  add_counts(j, c.counts);
  j["answered"] = c.feedback.answered;
  j["hard_bounces"] = c.feedback.hard_bounces;
  j["complaints"] = c.feedback.complaints;
  j["blocks"] = c.feedback.blocks;
  CampaignRates rates = campaign_rates(c.feedback);
  j["hard_bounce_rate"] = rates.hard_bounce;
  j["complaint_rate"] = rates.complaint;
  j["block_rate"] = rates.block;
  return j;
}

nlohmann::json campaign_status_json(const Campaign& campaign,
                                    const std::optional<DispatchState>& dispatch,
                                    bool daemon_running) {
  // The campaign's own counts: one read of the store, so the two objects never disagree.
  nlohmann::json j = status_json(campaign.counts, dispatch, daemon_running);
  j["campaign"] = campaign_json(campaign);
  return j;
}

std::string percent_of(std::int64_t count, std::int64_t answered) {
  if (answered <= 0) return "-";
  std::int64_t hundredths = count * 10'000 / answered;
  return std::to_string(hundredths / 100) + "." + (hundredths % 100 < 10 ? "0" : "") +
         std::to_string(hundredths % 100) + "%";
}

std::vector<std::string> rate_lines(const CampaignFeedback& f) {
  if (f.answered <= 0) return {"no message answered yet"};
  std::vector<std::string> out;
  const std::pair<const char*, std::int64_t> rates[] = {{"hard-bounce rate", f.hard_bounces},
                                                        {"complaint rate", f.complaints},
                                                        {"block rate", f.blocks}};
  for (const auto& [name, count] : rates) {
    out.push_back(std::string(name) + " " + percent_of(count, f.answered) + " (" +
                  std::to_string(count) + " of " + std::to_string(f.answered) + " answered)");
  }
  return out;
}

std::string pause_cause(const Campaign& c) {
  if (!c.paused_at) return "";
  if (c.pause_reason.empty()) return " by an operator";
  return ", automatically: " + c.pause_reason;
}

}  // namespace bulkmail
