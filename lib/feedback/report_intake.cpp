#include "feedback/report_intake.h"

#include <algorithm>
#include <stdexcept>

#include "base/address.h"
#include "base/text.h"
#include "crypto/digest.h"

namespace bulkmail {
namespace {

// Whether `named` (an address as a report gives it) is `recipient` (normalized).
bool same_address(const std::string& named, const std::string& recipient) {
  if (named.empty()) return false;
  auto a = parse_address(named);
  return a && a->str() == recipient;
}

std::optional<FeedbackKind> kind_of(BounceClass c) {
  switch (c) {
    case BounceClass::hard:
      return FeedbackKind::hard_bounce;
    case BounceClass::soft:
      return FeedbackKind::soft_bounce;
    case BounceClass::policy:
      return FeedbackKind::policy_block;
    case BounceClass::unknown:
      break;
  }
  return std::nullopt;
}

void plan_bounce(ReportPlan& p) {
  const SentMessage& m = *p.match.message;
  for (const ReportRecipient& r : p.report.recipients) {
    auto kind = kind_of(r.bounce_class);
    if (!kind) continue;  // delivered, relayed, or says too little: nothing to do
    if (!same_address(r.address, m.recipient) && !same_address(r.original_recipient, m.recipient)) {
      p.mismatched.push_back(r.address);
      continue;
    }
    p.record.feedback.push_back({m.id, *kind, r.status, r.diagnostic,
                                 r.remote_mta.empty() ? p.report.reporting_mta : r.remote_mta});
  }
}

void plan_complaint(ReportPlan& p) {
  const SentMessage& m = *p.match.message;
  // The complainants the report names in clear (RFC 6590 lets a provider redact them; one it
  // redacted is not compared): one of them must be the message's recipient.
  std::vector<std::string> named;
  for (const std::string& a : p.report.original_rcpt_to) {
    if (!looks_redacted(a)) named.push_back(a);
  }
  if (!named.empty() && std::none_of(named.begin(), named.end(), [&](const std::string& a) {
        return same_address(a, m.recipient);
      })) {
    p.mismatched = named;
    return;
  }
  FeedbackKind kind = complaint_suppresses(p.report.feedback_type) ? FeedbackKind::complaint
                                                                   : FeedbackKind::complaint_note;
  std::string type = p.report.feedback_type.empty() ? "(no type)" : p.report.feedback_type;
  std::string diagnostic =
      p.report.user_agent.empty() ? "" : "feedback report by " + p.report.user_agent;
  p.record.feedback.push_back({m.id, kind, type, diagnostic, p.report.reporting_mta});
}

// Whether matching is worth the store's time: only bounces, delays and complaints ask anything.
bool asks_anything(ReportKind k) {
  return k == ReportKind::bounce || k == ReportKind::delay || k == ReportKind::complaint;
}

}  // namespace

ReportPlan plan_report(Report report, Match match, std::string digest, std::string source) {
  ReportPlan p{std::move(report), std::move(match), {}, {}};
  p.record.digest = std::move(digest);
  p.record.source = std::move(source);
  auto& counters = p.record.counters;
  counters.push_back("report:" + std::string(to_string(p.report.kind)));
  for (const ReportRecipient& r : p.report.recipients) {
    counters.push_back("class:" + std::string(to_string(r.bounce_class)));
  }
  if (!asks_anything(p.report.kind)) return p;
  if (p.retry_later()) {
    p.record.counters.clear();  // counted when it is taken in
    return p;
  }
  if (p.match.status != MatchStatus::matched) {
    counters.emplace_back(to_string(p.match.status));
    return p;
  }
  if (p.report.kind == ReportKind::complaint) {
    plan_complaint(p);
  } else {
    plan_bounce(p);
  }
  if (!p.mismatched.empty()) counters.emplace_back("mismatch");
  return p;
}

std::string describe(const ReportPlan& p, const ReportRecorded& recorded) {
  std::string out(to_string(p.report.kind));
  if (p.report.kind == ReportKind::complaint && !p.report.feedback_type.empty()) {
    out += " (" + p.report.feedback_type + ")";
  }
  if (!p.report.reporting_mta.empty()) out += " from " + p.report.reporting_mta;
  if (recorded.duplicate) return out + ": taken in before, nothing changed";
  if (!asks_anything(p.report.kind)) return out + ": nothing to do";
  if (p.match.status != MatchStatus::matched) {
    out += ": " + std::string(to_string(p.match.status)) + " (" + p.match.via;
    if (p.match.message) out += ", message " + std::to_string(p.match.message->id);
    return out + "), nothing changed";
  }
  const SentMessage& m = *p.match.message;
  out += " (" + p.match.via + ", message " + std::to_string(m.id) + ")";
  for (const std::string& a : p.mismatched) {
    out += ": names " + a + ", not the message's recipient " + m.recipient + ": not acted on";
  }
  for (std::size_t i = 0; i < recorded.applied.size() && i < p.record.feedback.size(); ++i) {
    const Feedback& f = p.record.feedback[i];
    const FeedbackApplied& a = recorded.applied[i];
    out += ": " + std::string(to_string(f.kind)) + " " + f.status + " for " + m.recipient;
    if (!a.applied) {
      out += " (the message is gone or was never sent: nothing changed)";
      continue;
    }
    if (f.kind == FeedbackKind::soft_bounce) out += ", run " + std::to_string(a.soft_count);
    if (a.suppressed) out += ", suppressed";
    if (!a.paused_campaign.empty()) {
      out += "; campaign " + a.paused_campaign + " paused itself: " + a.pause_reason;
    }
  }
  if (p.record.feedback.empty() && p.mismatched.empty()) out += ": nothing to do";
  return out;
}

std::vector<std::string> envelope_recipients_in(std::string_view message) {
  constexpr std::size_t kMax = 8;
  message = message.substr(0, 64 * 1024);
  std::vector<std::string> original_to, delivered_to;
  while (!message.empty()) {
    std::size_t eol = message.find('\n');
    std::string_view line = message.substr(0, eol);
    message = eol == std::string_view::npos ? std::string_view() : message.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the end of the header block
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = trim(line.substr(colon + 1));
    if (value.size() >= 2 && value.front() == '<' && value.back() == '>') {
      value = value.substr(1, value.size() - 2);
    }
    if (value.empty()) continue;
    if (iequals(name, "X-Original-To") && original_to.size() < kMax) {
      original_to.emplace_back(value);
    }
    if (iequals(name, "Delivered-To") && delivered_to.size() < kMax) {
      delivered_to.emplace_back(value);
    }
  }
  for (std::string& a : delivered_to) {
    if (original_to.size() >= kMax) break;
    original_to.push_back(std::move(a));
  }
  return original_to;
}

ReportIntake::ReportIntake(const Config& config, Store& store, std::string source)
    : store_(store),
      source_(std::move(source)),
      tokens_(config.unsubscribe.keys, config.unsubscribe.token_expiry_days),
      policy_(feedback_policy(config.bounces)) {
  keys_.verp.emplace(config.unsubscribe.keys);
  keys_.bounce_domain = config.bounces.domain;
  keys_.tokens = &tokens_;
  keys_.unsubscribe_url = config.unsubscribe.url;
}

Result<ReportPlan> ReportIntake::prepare(std::string_view message,
                                         const std::vector<std::string>& envelope_recipients,
                                         UnixMillis now) {
  auto report = parse_report(message);
  if (!report) return report.error();
  Match match;
  if (asks_anything(report->kind)) {
    match = match_report(*report, envelope_recipients, keys_, store_, now);
  }
  // The same bytes delivered to another address are another delivery (to fbl@ and to a return
  // path, or once more after an operator fixed --recipient): only a repeat of both counts once.
  std::string identity;
  for (const std::string& a : envelope_recipients) identity += to_lower_ascii(a) + "\n";
  identity += '\n';
  identity += message;
  return plan_report(std::move(report.value()), std::move(match), sha256_hex(identity), source_);
}

std::vector<ReportRecorded> ReportIntake::commit(std::span<const ReportPlan> plans,
                                                 UnixMillis now) {
  std::vector<ReceivedReport> records;
  records.reserve(plans.size());
  for (const ReportPlan& p : plans) {
    if (p.retry_later()) throw std::invalid_argument("a report to try again later was committed");
    records.push_back(p.record);
  }
  return store_.record_reports(records, policy_, now);
}

}  // namespace bulkmail
