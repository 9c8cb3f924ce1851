// What the queue holds (status) and the commands that act on a campaign as a whole (campaigns,
// pause, resume, cancel, retry).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <iomanip>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "commands.h"
#include "config/config.h"
#include "context.h"
#include "store/instance_lock.h"
#include "store/message_state.h"
#include "store/status.h"
#include "store/store.h"

namespace bulkmail::ctl {
namespace {

// A name no enqueue or import ever used is a typo, not a campaign with nothing in it.
Campaign check_campaign(Context& ctx, const std::string& campaign) {
  auto c = ctx.db().campaign(campaign);
  if (!c) fail("unknown campaign '" + campaign + "' (bulkmailctl campaigns lists them)");
  return *c;
}

void cmd_campaigns(Context& ctx, bool json) {
  std::vector<Campaign> all = ctx.db().campaigns();
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Campaign& c : all) out.push_back(campaign_json(c));
    std::cout << out.dump() << "\n";
    return;
  }
  if (all.empty()) {
    std::cout << "no campaigns yet\n";
    return;
  }
  std::cout << std::left << std::setw(24) << "campaign" << std::setw(26) << "created"
            << std::setw(26) << "last activity";
  for (MessageState s : kAllMessageStates) std::cout << std::setw(11) << to_string(s);
  // Rates of the answered messages ("-" while none is); status --campaign gives the counts.
  std::cout << std::setw(13) << "hard-bounce%" << std::setw(11) << "complaint%" << std::setw(8)
            << "block%"
            << "paused\n";
  for (const Campaign& c : all) {
    std::cout << std::left << std::setw(24) << c.name << std::setw(26)
              << format_iso8601(c.created_at) << std::setw(26) << format_iso8601(c.last_activity);
    for (MessageState s : kAllMessageStates) std::cout << std::setw(11) << c.counts[s];
    const CampaignFeedback& f = c.feedback;
    std::cout << std::setw(13) << percent_of(f.hard_bounces, f.answered) << std::setw(11)
              << percent_of(f.complaints, f.answered) << std::setw(8)
              << percent_of(f.blocks, f.answered);
    if (!c.paused_at) {
      std::cout << "no\n";
    } else {
      // The reason is long: status --campaign shows it.
      std::cout << "since " << format_iso8601(*c.paused_at)
                << (c.pause_reason.empty() ? "" : ", automatically") << "\n";
    }
  }
}

void cmd_pause(Context& ctx, const std::string& campaign, bool paused) {
  Campaign c = check_campaign(ctx, campaign);
  if (c.paused_at.has_value() == paused) {
    std::cout << "campaign " << campaign << " is already "
              << (paused ? "paused (since " + format_iso8601(*c.paused_at) + pause_cause(c) + ")"
                         : "running")
              << "\n";
    return;
  }
  auto n = ctx.db().set_campaign_paused(campaign, paused, now_millis());
  if (!n) fail("unknown campaign '" + campaign + "'");
  std::cout << "campaign " << campaign << (paused ? " paused: " : " resumed: ") << *n
            << (paused ? " waiting messages held (messages being sent finish)"
                       : " waiting messages released")
            << "\n";
  if (!paused && !c.pause_reason.empty()) {
    // What the operator overrode, and what the automatic pause judges from now on.
    std::cout << "it had paused itself (" << c.pause_reason
              << "); it pauses itself again only on what is answered from now on\n";
  }
}

void status_report(Context& ctx, const std::string& campaign, bool json);

void cmd_status(Context& ctx, const std::string& campaign, bool json) {
  ctx.allow_invalid_config_for_database();
  int code = 0;
  if (const ConfigLoad& l = ctx.load(); !l.ok()) {
    if (l.database.empty()) ctx.cfg();  // nothing to report from: fails as every command does
    ctx.report_invalid(l);
    code = kExitConfig;
  }
  try {
    status_report(ctx, campaign, json);
  } catch (const ExitCode&) {
    if (code == 0) throw;  // the config's problem is the one to exit with
  }
  if (code != 0) throw ExitCode{code};
}

// What the daemon is doing, as its last word and the instance lock tell it; where several share
// the database, what they do together and each one's word.
void print_dispatch(Context& ctx) {
  std::vector<DaemonState> daemons = ctx.db().daemons();
  if (!daemons.empty()) {
    UnixMillis now = now_millis();
    DispatchState c = cluster_dispatch(daemons, now);
    std::cout << "dispatch: " << c.state << " (" << c.detail << ") since "
              << format_iso8601(c.updated_at) << "\n";
    for (const std::string& line : daemon_lines(daemons, now)) std::cout << line << "\n";
    return;
  }
  if (auto d = ctx.db().dispatch_state()) {
    if (d->state != "stopped" && !ctx.daemon_may_run()) {
      // What the database says is what a daemon said before it died: the lock tells the truth.
      std::cout << "dispatch: not running (bulkmaild is not running on this database; it last "
                   "said "
                << d->state << " at " << format_iso8601(d->updated_at) << ")\n";
    } else {
      std::cout << "dispatch: " << d->state << (d->detail.empty() ? "" : " (" + d->detail + ")")
                << " since " << format_iso8601(d->updated_at) << "\n";
      if (!d->config_problem.empty() && d->state != "stopped") {
        std::cout << "config: " << d->config_problem << "\n";
      }
    }
  } else {
    std::cout << "dispatch: not running (no bulkmaild has run on this database yet)\n";
  }
}

void status_report(Context& ctx, const std::string& campaign, bool json) {
  std::optional<Campaign> one;
  if (!campaign.empty()) one = check_campaign(ctx, campaign);
  // A campaign's counts come with its row, in one snapshot.
  StateCounts c = one ? one->counts : ctx.db().counts(std::nullopt);
  if (json) {
    auto dispatch = ctx.db().dispatch_state();
    bool running = ctx.daemon_may_run();
    std::vector<DaemonState> daemons = ctx.db().daemons();
    UnixMillis now = now_millis();
    if (!daemons.empty()) dispatch = cluster_dispatch(daemons, now);
    std::cout << (one ? campaign_status_json(*one, dispatch, running)
                      : status_json(c, dispatch, running, daemons, now))
                     .dump()
              << "\n";
    return;
  }
  std::int64_t total = 0;
  for (MessageState s : kAllMessageStates) {
    std::cout << std::left << std::setw(12) << to_string(s) << c[s] << "\n";
    total += c[s];
  }
  std::cout << std::left << std::setw(12) << "total" << total << "\n";
  if (one) {
    for (const std::string& line : rate_lines(one->feedback)) std::cout << line << "\n";
    if (one->paused_at) {
      std::cout << "campaign " << campaign << ": paused since " << format_iso8601(*one->paused_at)
                << pause_cause(*one) << " (bulkmailctl resume --campaign " << campaign << ")\n";
    }
  }
  print_dispatch(ctx);
}

void cmd_cancel(Context& ctx, const std::string& campaign) {
  check_campaign(ctx, campaign);
  std::cout << "cancelled " << ctx.db().cancel_campaign(campaign, "cli", now_millis()) << "\n";
}

void cmd_retry(Context& ctx, const std::string& campaign) {
  check_campaign(ctx, campaign);
  std::cout << "queued again " << ctx.db().retry_campaign(campaign, "cli", now_millis()) << "\n";
}

}  // namespace

void add_status_command(CLI::App& app, Options& opts, Commands& commands) {
  auto* status = app.add_subcommand("status", "messages per state");
  status->add_option(
      "--campaign", opts.campaign,
      "only this campaign, with its bounce and complaint rates and why it is paused");
  status->add_flag(
      "--json", opts.json,
      "one JSON object with a key per state (and a campaign's figures in \"campaign\")");
  commands.add(status, [](Context& ctx, const Options& o) { cmd_status(ctx, o.campaign, o.json); });
}

void add_campaign_commands(CLI::App& app, Options& opts, Commands& commands) {
  auto* campaigns = app.add_subcommand(
      "campaigns", "each campaign: messages per state, created, last activity, rates, paused");
  campaigns->add_flag("--json", opts.json, "a JSON array");
  commands.add(campaigns, [](Context& ctx, const Options& o) { cmd_campaigns(ctx, o.json); });

  auto* pause = app.add_subcommand("pause", "hold a campaign's waiting messages until resumed");
  pause->add_option("--campaign", opts.campaign)->required();
  commands.add(pause, [](Context& ctx, const Options& o) { cmd_pause(ctx, o.campaign, true); });
  auto* resume = app.add_subcommand("resume", "send a paused campaign's messages again");
  resume->add_option("--campaign", opts.campaign)->required();
  commands.add(resume, [](Context& ctx, const Options& o) { cmd_pause(ctx, o.campaign, false); });

  auto* cancel = app.add_subcommand("cancel", "cancel a campaign's queued and deferred messages");
  cancel->add_option("--campaign", opts.campaign)->required();
  commands.add(cancel, [](Context& ctx, const Options& o) { cmd_cancel(ctx, o.campaign); });
  auto* retry =
      app.add_subcommand("retry", "queue a campaign's failed and deferred messages again");
  retry->add_option("--campaign", opts.campaign)->required();
  commands.add(retry, [](Context& ctx, const Options& o) { cmd_retry(ctx, o.campaign); });
}

}  // namespace bulkmail::ctl
