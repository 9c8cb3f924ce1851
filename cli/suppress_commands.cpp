// suppress add, remove, list, import and export: the suppression list.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <iostream>
#include <string>

#include "base/clock.h"
#include "commands.h"
#include "context.h"
#include "crypto/digest.h"
#include "import_input.h"
#include "intake/csv_reader.h"
#include "intake/importer.h"
#include "intake/record_reader.h"
#include "intake/suppression_lift.h"
#include "store/store.h"
#include "store/suppression.h"

namespace fs = std::filesystem;

namespace bulkmail::ctl {
namespace {

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

}  // namespace

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

}  // namespace bulkmail::ctl
