// The outcome journal: where a delivery's outcome becomes durable the moment it is known, before
// the store has it. A sender appends the outcome (one write(2), no fsync: the same guarantee as
// SQLite's WAL at synchronous=NORMAL, it survives the death of the process) and may deliver its
// next message at once; the store worker applies what accumulated in one transaction every few
// milliseconds. So "at most one unrecorded message per connection" costs a write, not a wait for a
// commit, and the database sees a few large transactions instead of thousands of small ones.
//
// Files: `<database>-outcomes.<n>`, beside SQLite's own `-wal`. Appends go to the open segment;
// seal() starts a new one, and remove() deletes a sealed segment once its outcomes are committed.
// Records are length-prefixed and CRC-32 checked; reading stops at the first damaged one (a write
// torn by a crash is always the last). A daemon that starts applies every segment it finds before
// recovering leases: what was recorded only here is not sent again.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "store/store.h"

namespace bulkmail {

// The record format, exposed for the tests: encode_outcome's bytes decode back to the outcome.
std::string encode_outcome(const Outcome& o);
void encode_outcome(const Outcome& o, std::string& out);  // the same, into a reused buffer
// Reads the records at the start of `data`; stops at the end or at the first damaged record, and
// says in `damaged` how many bytes followed it.
std::vector<Outcome> decode_outcomes(std::string_view data, std::size_t* damaged = nullptr);

class OutcomeJournal {
 public:
  // Opens the journal beside `database`, reading the segments a stopped daemon left (recovered()).
  // Fails only if the directory cannot be listed or a segment cannot be read.
  static Result<std::unique_ptr<OutcomeJournal>> open(const std::filesystem::path& database);
  OutcomeJournal(const OutcomeJournal&) = delete;
  OutcomeJournal& operator=(const OutcomeJournal&) = delete;

  // The outcomes found at open(), oldest first, and what was wrong with the files, if anything.
  const std::vector<Outcome>& recovered() const { return recovered_; }
  const std::vector<std::string>& problems() const { return problems_; }
  // Deletes the segments read at open(): call once the store has committed recovered().
  void drop_recovered();

  // Appends `o`. True once it is in the file; false if it could not be written (disk full, file
  // gone), and then for every outcome until the next seal(), without trying: only the store's
  // commit makes those durable, and the caller must wait for that. A segment whose first record
  // could not be written is deleted at once, so a full disk does not fill with empty segments.
  // Not thread-safe: the store worker serializes appends with its own bookkeeping.
  bool append(const Outcome& o);
  // Closes the open segment and returns the numbers of the segments written since the last seal
  // (at most one); the next append starts a new segment.
  std::vector<std::uint64_t> seal();
  // Deletes sealed segments: every outcome in them is committed to the store. Returns what could
  // not be deleted, if anything (a segment left behind is replayed at the next start, where only
  // each message's newest outcome counts).
  std::optional<std::string> remove(const std::vector<std::uint64_t>& segments);

  std::filesystem::path segment_path(std::uint64_t n) const;

 private:
  explicit OutcomeJournal(std::filesystem::path prefix) : prefix_(std::move(prefix)) {}

  std::filesystem::path prefix_;        // <database>-outcomes
  std::uint64_t next_ = 1;              // number of the next segment to open
  std::vector<std::uint64_t> written_;  // segments appended to since the last seal
  UniqueFd fd_;                         // the open segment, if any
  bool failing_ = false;                // a write failed since the last seal: do not try again
  std::string buffer_;
  std::vector<Outcome> recovered_;
  std::vector<std::uint64_t> recovered_segments_;
  std::vector<std::string> problems_;
};

// Commits the outcomes `journal` recovered at open() to `store`, then deletes their segments.
// Only the newest outcome of each message is applied: an older one (from a segment a daemon could
// not delete) must not take a message that was claimed again since. Returns how many outcomes
// were applied. Run before leases are recovered, so that a message whose outcome was journaled is
// not queued again.
std::size_t apply_recovered(OutcomeJournal& journal, Store& store, UnixMillis now);

}  // namespace bulkmail
