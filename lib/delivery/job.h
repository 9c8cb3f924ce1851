// A job is one claimed message handed to a sender; its result goes back to where the job came
// from. Senders pull jobs (JobSource::next) instead of being handed them: the dispatcher's
// decisions run on whichever sender asks, so no message waits for another thread to be
// scheduled on a busy machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "delivery/smtp_reply.h"
#include "store/message_state.h"
#include "store/store.h"

namespace bulkmail {

struct Job {
  ClaimedMessage message;
  std::string domain;
  std::int64_t claimed_at = 0;  // steady-clock microseconds when its claim was asked for
};

struct JobResult {
  int sender = 0;
  std::uint64_t seq = 0;  // this sender's outcome number, for StoreWorker::record
  ClaimedMessage message;
  std::string domain;
  std::int64_t claimed_at = 0;  // the job's
  enum class Kind { delivered, suppressed, compose_failed, aborted } kind = Kind::delivered;
  Classification classification;  // for delivered
  std::string detail;             // why suppressed, the compose error, or why aborted
  std::string message_id_header;
  std::int64_t latency_us = 0;                         // compose + deliver
  MessageState recorded_state = MessageState::queued;  // what the recorded outcome says
};

class JobSource {
 public:
  virtual ~JobSource() = default;
  // Takes note of `finished` (the sender's previous result, already recorded in the store; null
  // for its first call) and blocks until there is a job for `sender`. nullopt: stop sending.
  virtual std::optional<Job> next(int sender, const JobResult* finished) = 0;
  // Makes every next() return nullopt from now on.
  virtual void close() = 0;
};

}  // namespace bulkmail
