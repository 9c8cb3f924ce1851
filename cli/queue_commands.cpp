// Putting mail in the queue (enqueue, import), and seeing what bulkmaild would send without
// queuing it (preview, dkim-record).
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "commands.h"
#include "compose/compose_scratch.h"
#include "compose/composer.h"
#include "compose/vars.h"
#include "config/config.h"
#include "context.h"
#include "crypto/dkim.h"
#include "import_input.h"
#include "intake/importer.h"
#include "intake/record_reader.h"
#include "intake/submission.h"
#include "store/store.h"
#include "store/suppression.h"

namespace fs = std::filesystem;

namespace bulkmail::ctl {
namespace {

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
  if (created) {
    try {
      ctx.db().drop_campaign_if_empty(campaign);
    } catch (const std::runtime_error&) {
      // The database that stopped the import may refuse this too: what stopped it is the news.
      if (s.fatal.empty()) throw;
    }
  }
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

// Prints the message bulkmaild would send. With `envelope`, its envelope sender goes on top as
// the Return-Path: field the receiving server adds at delivery (RFC 5321 4.4), so that the output
// still reads as one RFC 5322 message, its DKIM signature intact (Return-Path is never signed).
// A preview is never queued: with bounces.domain its VERP address names message 0.
void cmd_preview(Context& ctx, const std::string& category, const std::string& to,
                 const std::vector<std::string>& var_args, const std::string& campaign,
                 bool envelope) {
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
  if (envelope) std::cout << "Return-Path: <" << msg->envelope_from << ">\r\n";
  std::cout << msg->data;
}

void cmd_dkim_record(Context& ctx) {
  const Config& c = ctx.cfg();
  if (!c.dkim) fail("DKIM is not configured (no dkim block in the config)");
  std::cout << c.dkim->selector << "._domainkey." << c.dkim->domain << ". IN TXT "
            << c.dkim->key->dns_record_strings() << "\n";
}

// --category --to --var --campaign: the message enqueue and preview describe.
void add_message_options(CLI::App* command, Options& opts, const std::string& campaign_help) {
  command->add_option("--category", opts.category, "category of mail")->required();
  command->add_option("--to", opts.to, "recipient address")->required();
  command->add_option("--var", opts.vars, "template variable KEY=VALUE (repeatable)");
  command->add_option("--campaign", opts.campaign, campaign_help);
}

}  // namespace

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
  preview->add_flag("--envelope", opts.envelope,
                    "put the envelope sender (MAIL FROM) on top, as the Return-Path: header the "
                    "receiving server adds");
  commands.add(preview, [](Context& ctx, const Options& o) {
    cmd_preview(ctx, o.category, o.to, o.vars, o.campaign, o.envelope);
  });

  auto* dkim_record =
      app.add_subcommand("dkim-record", "print the DNS TXT record that publishes the DKIM key");
  commands.add(dkim_record, [](Context& ctx, const Options&) { cmd_dkim_record(ctx); });
}

}  // namespace bulkmail::ctl
