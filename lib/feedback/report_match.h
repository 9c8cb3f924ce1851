// Which message a report that came back by mail is about. Anyone can mail the bounce address, so
// an address in a report is never enough: a report acts only on a message bulkmail sent, named
// by something only bulkmail could have put there or that only the message's own copy holds. In
// the order issue 15 gives:
//  1. the VERP token of the address the report was delivered to (the envelope recipient), or of
//     the return path the report quotes (ARF's Original-Mail-From, the returned Return-Path);
//  2. the Message-ID of the returned original;
//  3. the unsubscribe token in the returned original's List-Unsubscribe (its List-Id must name
//     the same category).
// A token whose MAC fails is a forgery: the report changes nothing, whatever else it holds. A
// report that names a recipient other than the matched message's is an error, not an action.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "bounce/report.h"
#include "crypto/unsubscribe_token.h"
#include "crypto/verp_token.h"
#include "store/store.h"

namespace bulkmail {

// What the matcher needs from the config.
struct MatchKeys {
  std::optional<VerpCodec> verp;  // from the unsubscribe keys; nullopt only in tests
  std::string bounce_domain;      // bounces.domain; "" when VERP is off
  const TokenCodec* tokens = nullptr;
  std::string unsubscribe_url;  // unsubscribe.url: links are <url>/<token>
};

enum class MatchStatus {
  matched,    // a message bulkmail handed to the relay
  unmatched,  // nothing names a message bulkmail knows
  forged,     // a token that no key signed
  not_sent,   // it names a message that was never handed to the relay (queued, failed, ...)
  // It names a message a daemon is handing to the relay now, or handed over without recording it
  // yet (one stopped after the relay's 250 records it at its next start): the report can only
  // come back early, so it is kept for a later try (bounce receive exits 75, or leaves the file
  // in new/), never dropped.
  in_flight,
};

// "matched", "unmatched", "forged", "not-sent", "in-flight".
std::string_view to_string(MatchStatus s);

struct Match {
  MatchStatus status = MatchStatus::unmatched;
  std::optional<SentMessage> message;  // set when matched or not_sent
  // How: "return path", "quoted return path", "Message-ID", "unsubscribe token"; or, when not
  // matched, what was tried and failed ("a forged return path token").
  std::string via;
};

// Finds the message `report` is about. `envelope_recipients`: the addresses it was delivered to,
// as far as they are known (--recipient, or an MDA's X-Original-To and Delivered-To: an alias may
// have rewritten one of them), each tried for a return path token. Reads the store; changes
// nothing.
Match match_report(const Report& report, const std::vector<std::string>& envelope_recipients,
                   const MatchKeys& keys, Store& store, UnixMillis now);

}  // namespace bulkmail
