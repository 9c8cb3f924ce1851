// unsubscribe-link, history and forget: the commands about one recipient.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <iostream>
#include <string>

#include "base/address.h"
#include "base/clock.h"
#include "base/text.h"
#include "commands.h"
#include "config/config.h"
#include "context.h"
#include "crypto/unsubscribe_token.h"
#include "store/store.h"
#include "store/suppression.h"

namespace bulkmail::ctl {
namespace {

// The opt-out link a message to ADDRESS of CATEGORY would carry: for support staff answering a
// recipient, and for load tests of the webhook. "-" reads one address per line from stdin.
void cmd_unsubscribe_link(Context& ctx, const std::string& category, const std::string& address) {
  const Config& c = ctx.cfg();
  if (!c.category(category)) fail("unknown category '" + category + "'");
  TokenCodec tokens(c.unsubscribe.keys, c.unsubscribe.token_expiry_days);
  std::int64_t now = now_millis() / 1000;
  auto link = [&](const Address& a) {
    return c.unsubscribe.url + "/" + tokens.issue({a.str(), category, now});
  };
  if (address != "-") {
    auto a = parse_address(address);
    if (!a) fail("bad address: " + a.error().message);
    std::cout << link(*a) << "\n";
    return;
  }
  // From stdin: "address<TAB>link" a line, so that each link can be matched back to its input;
  // every bad line is reported with its number, and the exit status says whether any was.
  std::string line;
  std::size_t bad = 0;
  for (std::size_t n = 1; std::getline(std::cin, line); ++n) {
    std::string input(bulkmail::trim(line));
    if (input.empty()) continue;
    auto a = parse_address(input);
    if (!a) {
      std::cerr << "bulkmailctl: stdin:" << n << ": bad address: " << a.error().message << "\n";
      ++bad;
      continue;
    }
    std::cout << input << '\t' << link(*a) << "\n";
  }
  if (bad) fail(std::to_string(bad) + " bad address" + (bad == 1 ? "" : "es") + " on stdin");
}

void cmd_history(Context& ctx, const std::string& address, bool json) {
  std::string a = normalized_or_fail(address);
  auto events = ctx.db().history(a);
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const Event& e : events) {
      arr.push_back({{"at", format_iso8601(e.at)},
                     {"type", e.type},
                     {"message", e.message ? nlohmann::json(*e.message) : nlohmann::json(nullptr)},
                     {"category", e.category},
                     {"campaign", e.campaign},
                     {"source", e.source},
                     {"detail", e.detail}});
    }
    std::cout << arr.dump() << "\n";
    return;
  }
  if (events.empty()) std::cerr << "bulkmailctl: no events for this address\n";
  for (const Event& e : events) {
    std::cout << format_iso8601(e.at) << "  " << e.type;
    if (e.message) std::cout << "  message " << *e.message;
    if (!e.category.empty()) std::cout << "  category " << e.category;
    if (!e.campaign.empty()) std::cout << "  campaign " << e.campaign;
    std::cout << "  source " << e.source;
    if (!e.detail.empty()) std::cout << "  " << e.detail;
    std::cout << "\n";
  }
}

// Erases a person on their request, keeping only what honouring their opt-outs needs.
void cmd_forget(Context& ctx, const std::string& address) {
  ForgetResult r = ctx.db().forget(normalized_or_fail(address), "cli", now_millis());
  std::cout << "erased " << r.messages << " message" << (r.messages == 1 ? "" : "s")
            << " (with their variables) and " << r.events << " event" << (r.events == 1 ? "" : "s")
            << "\n";
  if (r.in_flight > 0) {
    std::cerr << "bulkmailctl: " << r.in_flight << " of them "
              << (r.in_flight == 1 ? "was" : "were")
              << " being sent at that moment and may still be delivered (nothing is recorded of "
                 "it)\n";
  }
  if (!r.log_emptied) {
    std::cerr << "bulkmailctl: the database's write-ahead log still holds the erased rows until "
                 "its next checkpoint (a reader was busy); run forget again later to empty it\n";
  }
  if (r.suppressions.empty()) {
    std::cout << "no suppression: nothing of the address is kept\n";
    return;
  }
  for (const Suppression& s : r.suppressions) {
    std::cout << "kept: suppression " << scope_text(s.category) << ", " << to_string(s.reason)
              << " since " << format_iso8601(s.created_at) << ", under a salted hash\n";
  }
  std::cout << "history and later imports still find it by the address; nothing else holds it\n";
}

}  // namespace

// What concerns one recipient: their opt-out link, their history, forgetting them.
void add_address_commands(CLI::App& app, Options& opts, Commands& commands) {
  auto* link = app.add_subcommand("unsubscribe-link",
                                  "print the opt-out link a message to ADDRESS would carry");
  link->add_option("--category", opts.category, "category of mail")->required();
  link->add_option("ADDRESS", opts.address, "the recipient, or - for one address a line on stdin")
      ->required();
  commands.add(link, [](Context& ctx, const Options& o) {
    cmd_unsubscribe_link(ctx, o.category, o.address);
  });

  auto* history = app.add_subcommand("history", "every event for an address, oldest first");
  history->add_option("ADDRESS", opts.address)->required();
  history->add_flag("--json", opts.json, "a JSON array");
  commands.add(history,
               [](Context& ctx, const Options& o) { cmd_history(ctx, o.address, o.json); });

  auto* forget = app.add_subcommand(
      "forget", "erase an address's messages and events, keeping its suppressions as a hash");
  forget->add_option("ADDRESS", opts.address)->required();
  commands.add(forget, [](Context& ctx, const Options& o) { cmd_forget(ctx, o.address); });
}

}  // namespace bulkmail::ctl
