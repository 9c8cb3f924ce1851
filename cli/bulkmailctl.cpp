// bulkmailctl: the operator's command line for the bulkmail queue. It only wires arguments to the
// library and prints results; every rule lives in lib/.
//
// Exit status: 0 success, 1 failure (bad input, rejected rows, a database error), 2 bad usage,
// 3 invalid config.
#include <unistd.h>

#include <SQLiteCpp/Exception.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/address.h"
#include "base/text.h"
#include "compose/compose_scratch.h"
#include "compose/composer.h"
#include "config/config.h"
#include "crypto/digest.h"
#include "crypto/unsubscribe_token.h"
#include "intake/csv_reader.h"
#include "intake/importer.h"
#include "intake/submission.h"
#include "intake/suppression_lift.h"
#include "store/instance_lock.h"
#include "store/sqlite/sqlite_store.h"
#include "store/status.h"
#include "store/suppression.h"

namespace fs = std::filesystem;
using namespace bulkmail;

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 3;

struct ExitCode {
  int code;
};

[[noreturn]] void fail(const std::string& message, int code = kExitFailure) {
  std::cerr << "bulkmailctl: " << message << "\n";
  throw ExitCode{code};
}

// What the commands share, each made on first use and reached only through its accessor: the
// config (read, then validated), the compose check, the store. A command makes only what it uses:
// `preview` never opens the database, and `status` reports from the one an invalid config names.
class Context {
 public:
  explicit Context(std::string config_path) : config_path_(std::move(config_path)) {}

  // The config file as read, valid or not. Exits 3 when there is no such file.
  const ConfigLoad& load() {
    if (!loaded_) {
      fs::path p = config_path_.empty() ? default_config_path() : fs::path(config_path_);
      std::error_code ec;
      if (!fs::exists(p, ec)) {
        fail(p.string() + ": config file not found (give --config FILE or set $BULKMAIL_CONFIG)",
             kExitConfig);
      }
      loaded_ = load_config(p);
    }
    return *loaded_;
  }

  // Prints an invalid config's problems, and whether a daemon still runs on an older version.
  void report_invalid(const ConfigLoad& l) {
    for (const auto& e : l.errors) std::cerr << e.str() << "\n";
    std::string running;
    if (!l.database.empty() && InstanceLock::held(l.database.string())) {
      running =
          "; bulkmaild is still running on the previous version of this file (fix it, "
          "then `systemctl reload bulkmaild`)";
    }
    std::cerr << "bulkmailctl: the config is invalid (" << l.errors.size() << " problem"
              << (l.errors.size() == 1 ? "" : "s") << ")" << running << "\n";
  }

  // The valid config, shared with what keeps it (a composer, the compose check). An invalid one
  // has its problems reported and exits 3.
  const std::shared_ptr<const Config>& shared_cfg() {
    if (!config_) {
      const ConfigLoad& l = load();
      if (!l.ok()) {
        report_invalid(l);
        throw ExitCode{kExitConfig};
      }
      config_ = l.config;
    }
    return config_;
  }
  const Config& cfg() { return *shared_cfg(); }

  // For `status`: database_path() then names the database of an invalid config too.
  void allow_invalid_config_for_database() { database_despite_invalid_config_ = true; }

  std::string database_path() {
    if (database_despite_invalid_config_ && !load().ok() && !load().database.empty())
      return load().database.string();
    return cfg().database.string();
  }

  // What a message must pass to be queued: composed once, as bulkmaild will.
  const ComposeCheck& check() {
    if (!compose_check_) {
      auto c = ComposeCheck::create(shared_cfg());
      if (!c) fail(c.error().message);
      compose_check_ = std::move(c.value());
    }
    return *compose_check_;
  }

  Store& db() {
    if (!store_) {
      std::string path = database_path();
      try {
        store_ = std::make_unique<SqliteStore>(path, /*checkpoints=*/true, SqliteOpen::existing);
      } catch (const std::exception& e) {
        fail("database " + path + ": " + e.what());
      }
    }
    return *store_;
  }

  // Whether db() has opened the store: before that, no failure can be the database's.
  bool store_open() const { return store_ != nullptr; }

 private:
  std::string config_path_;  // --config; empty: $BULKMAIL_CONFIG, then the default path
  // `status` still reports from the database an invalid config names (and exits 3), so that an
  // operator whose edit failed to reload sees what the daemon is running on.
  bool database_despite_invalid_config_ = false;
  std::optional<ConfigLoad> loaded_;
  std::shared_ptr<const Config> config_;  // set by shared_cfg() only, from a valid loaded_
  std::unique_ptr<ComposeCheck> compose_check_;
  std::unique_ptr<Store> store_;
};

std::string normalized_or_fail(const std::string& input) {
  auto a = parse_address(input);
  if (!a) fail("bad address: " + a.error().message);
  return a->str();
}

void check_category(Context& ctx, const std::string& category) {
  if (!category.empty() && !ctx.cfg().category(category))
    fail("unknown category '" + category + "'");
}

// An import's rows: from FILE, or stdin for "-", as CSV or JSON Lines.
struct ImportInput {
  std::ifstream file;
  std::unique_ptr<RowReader> rows;
  ImportInput(const std::string& path, const std::string& format) {
    std::istream* in = &std::cin;
    if (path != "-") {
      std::error_code ec;
      if (fs::is_directory(path, ec)) fail("cannot read " + path + ": it is a folder, not a file");
      file.open(path, std::ios::binary);
      if (!file) fail("cannot read " + path + ": " + std::strerror(errno));
      in = &file;
    }
    ImportFormat fmt = format.empty()
                           ? format_for_path(path)
                           : (format == "jsonl" ? ImportFormat::jsonl : ImportFormat::csv);
    rows = RowReader::open(*in, fmt);
  }
};

ImportOptions import_options() {
  ImportOptions opts;
  opts.on_reject = [](std::size_t line, const std::string& why) {
    std::cerr << "line " << line << ": rejected: " << why << "\n";
  };
  if (isatty(STDERR_FILENO)) {
    opts.on_progress = [](std::int64_t n) { std::cerr << "\r" << n << " rows read" << std::flush; };
  }
  return opts;
}

// After a fatal problem: whether rows read before it were kept.
std::string rows_kept(const ImportSummary& s) {
  return s.queued + s.updated + s.already_queued + s.suppressed > 0 ? " (rows before it were kept)"
                                                                    : "";
}

std::string scope_text(const std::string& category) {
  return category.empty() ? "all mail" : category;
}

// The submission `--category --to --var... --campaign` describe.
Submission submission_from(const std::string& category, const std::string& to,
                           const std::vector<std::string>& var_args, const std::string& campaign) {
  Submission s{category, to, {}, campaign};
  for (const auto& arg : var_args) {
    auto kv = parse_var_assignment(arg);
    if (!kv) fail(kv.error().message);
    s.vars.insert_or_assign(kv->first, kv->second);
  }
  return s;
}

NewMessage value_or_fail(Result<NewMessage> m) {
  if (!m) fail(m.error().message);
  return std::move(m.value());
}

// --- commands -------------------------------------------------------------------------------

void cmd_enqueue(Context& ctx, const std::string& category, const std::string& to,
                 const std::vector<std::string>& var_args, const std::string& campaign) {
  NewMessage msg = value_or_fail(
      validate_submission(ctx.check(), submission_from(category, to, var_args, campaign)));
  EnqueueResult r = ctx.db().enqueue({&msg, 1}, "cli", now_millis()).front();
  switch (r.status) {
    case EnqueueStatus::queued:
      std::cout << r.id << "\n";
      break;
    case EnqueueStatus::suppressed: {
      if (r.id == 0) {
        std::cerr << "bulkmailctl: the recipient asked to be forgotten and is suppressed: nothing "
                     "was stored\n";
        break;
      }
      auto sup = ctx.db().find_suppression(msg.recipient, msg.category);
      std::cout << r.id << "\n";
      std::cerr << "bulkmailctl: the recipient is suppressed"
                << (sup ? " (" + std::string(to_string(sup->reason)) + ", " +
                              scope_text(sup->category) + ")"
                        : "")
                << ": message " << r.id << " is stored as suppressed and will not be sent\n";
      break;
    }
    case EnqueueStatus::already_queued:
      std::cerr << "bulkmailctl: campaign '" << campaign
                << "' already holds this recipient: nothing changed\n";
      break;
  }
}

// An import whose campaign is named after its file adds to an existing campaign only when that
// campaign came from the same file (a re-run, or a corrected copy in its place): a file of the
// same name elsewhere (nov/list.csv, then dec/list.csv) would otherwise skip every recipient
// November already had. `--campaign` names it explicitly and may add any file. `look_only`
// (a dry run, an update) creates nothing. Returns whether it created the campaign (the import
// then drops it again if it stores nothing).
bool check_origin(Context& ctx, const std::string& campaign, bool named_by_file,
                  const std::string& file, bool look_only) {
  std::string origin;  // none for stdin, a pipe or a device: those need --campaign
  std::error_code ec;
  if (file != "-" && fs::is_regular_file(file, ec)) {
    fs::path p = fs::weakly_canonical(fs::absolute(file, ec), ec);
    origin = ec ? fs::absolute(file).lexically_normal().string() : p.string();
  }
  std::optional<Campaign> c = ctx.db().campaign(campaign);
  bool created = false;
  if (!c && !look_only) {
    c = ctx.db().open_campaign(campaign, origin, now_millis());
    created = c->origin == origin && c->counts.by_state == StateCounts{}.by_state;
  }
  if (!named_by_file || !c || c->origin == origin) return created;
  fail("campaign '" + campaign + "' already exists" +
       (c->origin.empty() ? std::string(" (not from an import of this file)")
                          : " (imported from " + c->origin + ")") +
       ", and this file is " + origin +
       ": an import never adds to a campaign only because its file has the same name. Give "
       "--campaign " +
       campaign +
       " to add these recipients to it, or --campaign NEW-NAME for a campaign of their own");
  return false;
}

void cmd_import(Context& ctx, const std::string& category, std::string campaign,
                const std::string& file, const std::string& format, bool dry_run, bool update) {
  if (dry_run && update) fail("--dry-run and --update: choose one");
  check_category(ctx, category);
  bool named_by_file = campaign.empty();
  if (named_by_file) {
    if (file == "-") fail("reading from stdin needs --campaign, so that a re-run is recognized");
    std::error_code ec;
    if (fs::exists(file, ec) && !fs::is_regular_file(file, ec) && !fs::is_directory(file, ec)) {
      fail(file +
           " is not a regular file (a pipe, /dev/stdin or a device), so its name cannot "
           "tell one list from another: give --campaign NAME");
    }
    campaign = fs::path(file).stem().string();
    if (!check_campaign_name(campaign)) {
      fail("the file name '" + campaign + "' cannot name the campaign: give --campaign NAME");
    }
  } else if (auto named = check_campaign_name(campaign); !named) {
    fail("--campaign " + named.error().message);
  }
  ImportInput input(file, format);
  bool created = check_origin(ctx, campaign, named_by_file, file, dry_run || update);
  RowReader& rows = *input.rows;
  ImportOptions options = import_options();
  options.dry_run = dry_run;
  options.update = update;
  ImportSummary s = import_messages(rows, ctx.check(), category, campaign, ctx.db(),
                                    "import:" + fs::path(file).filename().string(), options);
  // A file refused whole (or holding no row that was stored) leaves no campaign behind, so that
  // its corrected copy, wherever it is, can take the name.
  if (created) ctx.db().drop_campaign_if_empty(campaign);
  if (isatty(STDERR_FILENO)) std::cerr << "\r";
  if (dry_run) {
    std::cout << "campaign " << campaign << " (dry run, nothing queued): would queue " << s.queued
              << ", suppressed " << s.suppressed << ", rejected " << s.rejected << "\n";
    if (!s.fatal.empty()) fail(file + ": " + s.fatal);
    if (s.rejected > 0) throw ExitCode{kExitFailure};
    return;
  }
  std::cout << "campaign " << campaign << ": queued " << s.queued;
  if (update) std::cout << ", updated " << s.updated;
  std::cout << ", already queued " << s.already_queued << ", suppressed " << s.suppressed
            << ", rejected " << s.rejected << "\n";
  if (!s.fatal.empty()) fail(file + ": " + s.fatal + rows_kept(s));
  if (s.queued == 0 && s.updated == 0 && s.already_queued > 0 && s.rejected == 0) {
    std::cerr << "bulkmailctl: every recipient was already queued in campaign " << campaign
              << ": nothing changed (a corrected file needs --update)\n";
  }
  if (s.rejected > 0) throw ExitCode{kExitFailure};
}

void cmd_preview(Context& ctx, const std::string& category, const std::string& to,
                 const std::vector<std::string>& var_args, const std::string& campaign) {
  // Loaded first, and through the accessor: the composer keeps the config it is given.
  const std::shared_ptr<const Config>& config = ctx.shared_cfg();
  NewMessage m = value_or_fail(
      validate_submission(*config, submission_from(category, to, var_args, campaign)));
  auto vars = vars_from_json(m.vars_json);
  if (!vars) fail(vars.error().message);
  auto composer = Composer::create(config);
  if (!composer) fail(composer.error().message);
  ComposeScratch scratch;
  auto msg =
      (*composer)->compose({category, m.recipient, *vars, campaign, 0, now_millis()}, scratch);
  if (!msg) fail("the message would not be sent: " + msg.error().message);
  std::cout << msg->data;
}

void cmd_dkim_record(Context& ctx) {
  const Config& c = ctx.cfg();
  if (!c.dkim) fail("DKIM is not configured (no dkim block in the config)");
  std::cout << c.dkim->selector << "._domainkey." << c.dkim->domain << ". IN TXT "
            << c.dkim->key->dns_record_strings() << "\n";
}

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
  std::cout << "paused\n";
  for (const Campaign& c : all) {
    std::cout << std::left << std::setw(24) << c.name << std::setw(26)
              << format_iso8601(c.created_at) << std::setw(26) << format_iso8601(c.last_activity);
    for (MessageState s : kAllMessageStates) std::cout << std::setw(11) << c.counts[s];
    std::cout << (c.paused_at ? "since " + format_iso8601(*c.paused_at) : std::string("no"))
              << "\n";
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

void cmd_pause(Context& ctx, const std::string& campaign, bool paused) {
  Campaign c = check_campaign(ctx, campaign);
  if (c.paused_at.has_value() == paused) {
    std::cout << "campaign " << campaign << " is already "
              << (paused ? "paused (since " + format_iso8601(*c.paused_at) + ")" : "running")
              << "\n";
    return;
  }
  auto n = ctx.db().set_campaign_paused(campaign, paused, now_millis());
  if (!n) fail("unknown campaign '" + campaign + "'");
  std::cout << "campaign " << campaign << (paused ? " paused: " : " resumed: ") << *n
            << (paused ? " waiting messages held (messages being sent finish)"
                       : " waiting messages released")
            << "\n";
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

void status_report(Context& ctx, const std::string& campaign, bool json) {
  std::optional<Campaign> one;
  if (!campaign.empty()) one = check_campaign(ctx, campaign);
  StateCounts c = ctx.db().counts(campaign.empty() ? std::nullopt : std::optional(campaign));
  if (json) {
    std::cout
        << status_json(c, ctx.db().dispatch_state(), InstanceLock::held(ctx.database_path())).dump()
        << "\n";
    return;
  }
  std::int64_t total = 0;
  for (MessageState s : kAllMessageStates) {
    std::cout << std::left << std::setw(12) << to_string(s) << c[s] << "\n";
    total += c[s];
  }
  std::cout << std::left << std::setw(12) << "total" << total << "\n";
  if (one && one->paused_at) {
    std::cout << "campaign " << campaign << ": paused since " << format_iso8601(*one->paused_at)
              << " (bulkmailctl resume --campaign " << campaign << ")\n";
  }
  if (auto d = ctx.db().dispatch_state()) {
    if (d->state != "stopped" && !InstanceLock::held(ctx.database_path())) {
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

void cmd_suppress_add(Context& ctx, const std::string& address, const std::string& category,
                      const std::string& reason_text) {
  check_category(ctx, category);
  auto reason = parse_suppression_reason(reason_text);
  if (!reason) fail("--reason must be one of " + suppression_reason_list());
  Suppression s{normalized_or_fail(address), category, *reason, "cli", 0};
  switch (ctx.db().suppress({&s, 1}, now_millis()).front()) {
    case SuppressOutcome::added:
      std::cout << "suppressed for " << scope_text(category) << "\n";
      break;
    case SuppressOutcome::raised:
      std::cout << "already suppressed for " << scope_text(category) << "; it now records the "
                << reason_text << " (lifting it needs --force)\n";
      break;
    case SuppressOutcome::recorded:
      std::cout << "already suppressed for " << scope_text(category) << "; the " << reason_text
                << " is recorded in its history\n";
      break;
    case SuppressOutcome::unchanged:
      std::cout << "already suppressed for " << scope_text(category) << "\n";
      break;
  }
}

void cmd_suppress_remove(Context& ctx, const std::string& address, const std::string& category,
                         bool force) {
  check_category(ctx, category);
  LiftResult r =
      lift_suppression(ctx.db(), normalized_or_fail(address), category, force, "cli", now_millis());
  if (r.status == LiftStatus::not_found) {
    fail("no suppression for " + scope_text(category) + " to remove");
  }
  if (r.status == LiftStatus::needs_consent) {
    fail(needs_consent_message(*r.suppression) + "give --force if you have it");
  }
  std::cout << "removed the suppression for " << scope_text(category) << "\n";
}

void cmd_suppress_list(Context& ctx, bool json) {
  nlohmann::json arr = nlohmann::json::array();
  ctx.db().for_each_suppression([&](const Suppression& s) {
    if (json) {
      arr.push_back(suppression_json(s));
    } else {
      std::cout << s.address << "  " << scope_text(s.category) << "  " << to_string(s.reason)
                << "  " << s.source << "  " << format_iso8601(s.created_at) << "\n";
    }
  });
  if (json) std::cout << arr.dump() << "\n";
}

void cmd_suppress_import(Context& ctx, const std::string& file, const std::string& format) {
  ImportInput input(file, format);
  RowReader& rows = *input.rows;
  ImportSummary s = import_suppressions(
      rows, ctx.cfg(), ctx.db(), "import:" + fs::path(file).filename().string(), import_options());
  std::cout << "suppressed " << s.queued << ", already suppressed " << s.already_queued
            << ", rejected " << s.rejected << "\n";
  if (!s.fatal.empty()) fail(file + ": " + s.fatal + rows_kept(s));
  if (s.rejected > 0) throw ExitCode{kExitFailure};
}

void cmd_suppress_export(Context& ctx, const std::string& hashed) {
  if (!hashed.empty() && hashed != "sha256") fail("--hashed supports sha256 only");
  std::cout << (hashed.empty() ? "email" : "email_sha256")
            << ",category,reason,source,created_at\n";
  std::int64_t forgotten = 0;
  ctx.db().for_each_suppression([&](const Suppression& s) {
    if (s.address.rfind(kForgottenKeyPrefix, 0) == 0) {
      ++forgotten;  // keyed by this database's own salt: nothing anywhere else could match it
      return;
    }
    std::cout << (hashed.empty() ? csv_escape(s.address) : sha256_hex(s.address)) << ","
              << csv_escape(s.category) << "," << to_string(s.reason) << "," << csv_escape(s.source)
              << "," << format_iso8601(s.created_at) << "\n";
  });
  if (forgotten > 0) {
    std::cerr << "bulkmailctl: " << forgotten << " suppression" << (forgotten == 1 ? "" : "s")
              << " of forgotten addresses not exported: they are kept as hashes only this "
                 "database can match\n";
  }
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

void cmd_cancel(Context& ctx, const std::string& campaign) {
  check_campaign(ctx, campaign);
  std::cout << "cancelled " << ctx.db().cancel_campaign(campaign, "cli", now_millis()) << "\n";
}

void cmd_retry(Context& ctx, const std::string& campaign) {
  check_campaign(ctx, campaign);
  std::cout << "queued again " << ctx.db().retry_campaign(campaign, "cli", now_millis()) << "\n";
}

// --- the command line -----------------------------------------------------------------------

// Every option's value, as parsed. Commands share the names (--category, --campaign, ADDRESS):
// only the chosen command's are read.
struct Options {
  std::string config_path;  // --config; empty: $BULKMAIL_CONFIG, then the default path
  std::string category, to, campaign, file, format, address, hashed;
  std::string reason = "manual";  // suppress add --reason
  std::vector<std::string> vars;  // --var KEY=VALUE, in the order given
  bool json = false, force = false, dry_run = false, update = false;
};

// Each subcommand declared, with what running it does.
class Commands {
 public:
  using Run = void (*)(Context&, const Options&);

  void add(CLI::App* command, Run run) { commands_.emplace_back(command, run); }

  // Runs the one the command line chose (require_subcommand(1) makes it exactly one).
  void run_chosen(Context& ctx, const Options& opts) const {
    for (const auto& [command, run] : commands_) {
      if (command->parsed()) {
        run(ctx, opts);
        return;
      }
    }
  }

 private:
  std::vector<std::pair<CLI::App*, Run>> commands_;
};

// --category --to --var --campaign: the message enqueue and preview describe.
void add_message_options(CLI::App* command, Options& opts, const std::string& campaign_help) {
  command->add_option("--category", opts.category, "category of mail")->required();
  command->add_option("--to", opts.to, "recipient address")->required();
  command->add_option("--var", opts.vars, "template variable KEY=VALUE (repeatable)");
  command->add_option("--campaign", opts.campaign, campaign_help);
}

// --format of an imported file.
void add_format_option(CLI::App* command, Options& opts) {
  command->add_option("--format", opts.format, "csv or jsonl (default: by file extension)")
      ->check(CLI::IsMember({"csv", "jsonl"}));
}

void add_queue_commands(CLI::App& app, Options& opts, Commands& commands) {
  auto* enqueue = app.add_subcommand("enqueue", "queue one message; prints its id");
  add_message_options(enqueue, opts, "campaign: an address is queued once per campaign");
  commands.add(enqueue, [](Context& ctx, const Options& o) {
    cmd_enqueue(ctx, o.category, o.to, o.vars, o.campaign);
  });

  auto* import =
      app.add_subcommand("import", "queue one message per row of a CSV or JSON Lines file");
  import->add_option("--category", opts.category, "category of mail")->required();
  import->add_option("--campaign", opts.campaign,
                     "campaign (default: the file name without extension)");
  add_format_option(import, opts);
  import->add_option("FILE", opts.file, "the file, or - for standard input")->required();
  import->add_flag("--dry-run", opts.dry_run,
                   "check every row against the template and report, queuing nothing");
  import->add_flag("--update", opts.update,
                   "a corrected file: recipients the campaign holds, not sent yet, take the row's "
                   "variables");
  commands.add(import, [](Context& ctx, const Options& o) {
    cmd_import(ctx, o.category, o.campaign, o.file, o.format, o.dry_run, o.update);
  });
}

// What bulkmaild would send, and what DNS must publish for it.
void add_preview_commands(CLI::App& app, Options& opts, Commands& commands) {
  auto* preview = app.add_subcommand(
      "preview", "print the exact bytes bulkmaild would send (signed when DKIM is on)");
  add_message_options(preview, opts, "campaign (used in Feedback-ID)");
  commands.add(preview, [](Context& ctx, const Options& o) {
    cmd_preview(ctx, o.category, o.to, o.vars, o.campaign);
  });

  auto* dkim_record =
      app.add_subcommand("dkim-record", "print the DNS TXT record that publishes the DKIM key");
  commands.add(dkim_record, [](Context& ctx, const Options&) { cmd_dkim_record(ctx); });
}

void add_status_command(CLI::App& app, Options& opts, Commands& commands) {
  auto* status = app.add_subcommand("status", "messages per state");
  status->add_option("--campaign", opts.campaign, "only this campaign");
  status->add_flag("--json", opts.json, "one JSON object with a key per state");
  commands.add(status, [](Context& ctx, const Options& o) { cmd_status(ctx, o.campaign, o.json); });
}

void add_suppress_commands(CLI::App& app, Options& opts, Commands& commands) {
  auto* suppress = app.add_subcommand("suppress", "manage the suppression list");
  suppress->require_subcommand(1);
  auto* s_add = suppress->add_subcommand("add", "stop mail to an address");
  s_add->add_option("ADDRESS", opts.address)->required();
  s_add->add_option("--category", opts.category, "only this category (default: all mail)");
  s_add
      ->add_option("--reason", opts.reason,
                   "one of " + suppression_reason_list() + " (default: manual)")
      ->check(CLI::IsMember(suppression_reason_names()));
  commands.add(s_add, [](Context& ctx, const Options& o) {
    cmd_suppress_add(ctx, o.address, o.category, o.reason);
  });

  auto* s_remove = suppress->add_subcommand("remove", "lift a suppression");
  s_remove->add_option("ADDRESS", opts.address)->required();
  s_remove->add_option("--category", opts.category,
                       "the category suppression (default: the all-mail one)");
  s_remove->add_flag("--force", opts.force,
                     "lift an unsubscribe or complaint (only with renewed consent)");
  commands.add(s_remove, [](Context& ctx, const Options& o) {
    cmd_suppress_remove(ctx, o.address, o.category, o.force);
  });

  auto* s_list = suppress->add_subcommand("list", "every suppression");
  s_list->add_flag("--json", opts.json, "a JSON array");
  commands.add(s_list, [](Context& ctx, const Options& o) { cmd_suppress_list(ctx, o.json); });

  auto* s_import =
      suppress->add_subcommand("import", "add suppressions from a CSV or JSON Lines file");
  s_import->add_option("FILE", opts.file, "the file, or - for standard input")->required();
  add_format_option(s_import, opts);
  commands.add(s_import,
               [](Context& ctx, const Options& o) { cmd_suppress_import(ctx, o.file, o.format); });

  auto* s_export = suppress->add_subcommand("export", "every suppression as CSV");
  s_export
      ->add_option("--hashed", opts.hashed,
                   "sha256: export hashes of the addresses, not the addresses")
      ->check(CLI::IsMember({"sha256"}));
  commands.add(s_export,
               [](Context& ctx, const Options& o) { cmd_suppress_export(ctx, o.hashed); });
}

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

void add_campaign_commands(CLI::App& app, Options& opts, Commands& commands) {
  auto* campaigns = app.add_subcommand(
      "campaigns", "each campaign: messages per state, created, last activity, paused");
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

// A command line CLI11 refused: says why, and exits 2.
int usage_error(CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  // "bulkmailctl bogus": say so, rather than CLI11's "a subcommand is required".
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config") {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    auto known = app.get_subcommands([&](CLI::App* s) { return s->get_name() == a; });
    if (known.empty()) {
      std::cerr << "bulkmailctl: unknown subcommand '" << a << "' (see bulkmailctl --help)\n";
      return kExitUsage;
    }
    break;
  }
  app.exit(e);
  return kExitUsage;
}

// Parses the command line. Returns the exit status when parsing ends the run (--help, --version,
// bad usage); nothing when the chosen command is to run.
std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(app, e, argc, argv);
  }
  return std::nullopt;
}

// Runs the chosen command; returns the exit status. The store throws std::runtime_error when the
// database fails: SQLite::Exception for what SQLite reports, std::runtime_error itself for what
// bulkmail finds wrong with the file (sqlite_store.h). Neither escapes uncaught.
int run_command(const Commands& commands, const Options& opts) {
  Context ctx(opts.config_path);
  try {
    commands.run_chosen(ctx, opts);
  } catch (const ExitCode& e) {
    return e.code;
  } catch (const SQLite::Exception& e) {
    std::cerr << "bulkmailctl: database error: " << e.what() << "\n";
    return kExitFailure;
  } catch (const std::runtime_error& e) {
    // Before the store is open, the failure is not the database's (an OpenSSL call, say).
    std::cerr << "bulkmailctl: " << (ctx.store_open() ? "database error: " : "") << e.what()
              << "\n";
    return kExitFailure;
  }
  std::cout.flush();
  return std::cout ? 0 : kExitFailure;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bulkmailctl: queue mail for bulkmaild, manage suppressions, inspect the queue"};
  app.set_version_flag("--version", std::string("bulkmailctl ") + BULKMAIL_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  Options opts;
  app.add_option("--config", opts.config_path,
                 "config file (default: $BULKMAIL_CONFIG, then /etc/bulkmail/bulkmail.yaml)");
  // In the order --help lists them.
  Commands commands;
  add_queue_commands(app, opts, commands);
  add_preview_commands(app, opts, commands);
  add_status_command(app, opts, commands);
  add_suppress_commands(app, opts, commands);
  add_address_commands(app, opts, commands);
  add_campaign_commands(app, opts, commands);
  if (std::optional<int> status = parse_command_line(app, argc, argv)) return *status;
  return run_command(commands, opts);
}
