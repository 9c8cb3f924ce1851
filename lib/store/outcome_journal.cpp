#include "store/outcome_journal.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <unordered_map>

#include "base/read_file.h"

namespace bulkmail {
namespace {

constexpr std::uint8_t kFormat = 1;
constexpr std::size_t kHeader = 8;               // CRC-32, then the payload's length
constexpr std::uint32_t kMaxPayload = 1u << 20;  // far above any real outcome

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_text(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

std::uint32_t crc_of(std::string_view bytes) {
  return static_cast<std::uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

// Reads a payload; false if it is short or holds a value no writer produces.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool u8(std::uint8_t& v) {
    if (s_.size() < 1) return false;
    v = static_cast<std::uint8_t>(s_[0]);
    s_.remove_prefix(1);
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (s_.size() < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<std::uint8_t>(s_[i])} << (8 * i);
    s_.remove_prefix(4);
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (s_.size() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
      v |= std::uint64_t{static_cast<std::uint8_t>(s_[static_cast<std::size_t>(i)])} << (8 * i);
    s_.remove_prefix(8);
    return true;
  }
  bool text(std::string& v) {
    std::uint32_t n;
    if (!u32(n) || s_.size() < n) return false;
    v.assign(s_.substr(0, n));
    s_.remove_prefix(n);
    return true;
  }
  bool done() const { return s_.empty(); }

 private:
  std::string_view s_;
};

// The byte after the next attempt's time: the outcome's bounce class. Journals written before
// there were classes hold 0 or 1 (suppress the recipient), which read the same.
constexpr BounceClass kJournalClasses[] = {BounceClass::unknown, BounceClass::hard,
                                           BounceClass::policy, BounceClass::soft};
std::uint8_t journal_class_byte(BounceClass c) {
  for (std::uint8_t i = 0; i < std::size(kJournalClasses); ++i) {
    if (kJournalClasses[i] == c) return i;
  }
  return 0;
}

std::optional<Outcome> decode_payload(std::string_view payload) {
  Reader r(payload);
  Outcome o;
  std::uint8_t format, suppress;
  std::uint64_t id, next;
  std::uint32_t code;
  std::string state;
  if (!r.u8(format) || format != kFormat || !r.u64(id) || !r.text(state) || !r.u32(code) ||
      !r.u64(next) || !r.u8(suppress) || !r.text(o.reply) || !r.text(o.message_id_header) ||
      !r.done()) {
    return std::nullopt;
  }
  auto s = parse_message_state(state);
  if (!s) return std::nullopt;
  o.id = static_cast<MessageId>(id);
  o.state = *s;
  o.reply_code = static_cast<int>(code);
  o.next_attempt_at = static_cast<UnixMillis>(next);
  if (suppress > 3) return std::nullopt;
  o.bounce_class = kJournalClasses[suppress];
  return o;
}

// "<name>-outcomes.<n>" -> n; 0 for any other name.
std::uint64_t segment_number(const std::string& file, const std::string& stem) {
  if (file.size() <= stem.size() + 1 || file.compare(0, stem.size(), stem) != 0 ||
      file[stem.size()] != '.')
    return 0;
  std::uint64_t n = 0;
  for (std::size_t i = stem.size() + 1; i < file.size(); ++i) {
    if (file[i] < '0' || file[i] > '9' || n > (UINT64_MAX - 9) / 10) return 0;
    n = n * 10 + static_cast<std::uint64_t>(file[i] - '0');
  }
  return n;
}

}  // namespace

void encode_outcome(const Outcome& o, std::string& out) {
  // [CRC-32 of length and payload][length][payload], built in place: the header's eight bytes
  // first, filled in once the payload's size is known.
  out.clear();
  out.append(kHeader, '\0');
  out.push_back(static_cast<char>(kFormat));
  put_u64(out, static_cast<std::uint64_t>(o.id));
  put_text(out, to_string(o.state));
  put_u32(out, static_cast<std::uint32_t>(o.reply_code));
  put_u64(out, static_cast<std::uint64_t>(o.next_attempt_at));
  out.push_back(static_cast<char>(journal_class_byte(o.bounce_class)));
  put_text(out, o.reply);
  put_text(out, o.message_id_header);
  auto length = static_cast<std::uint32_t>(out.size() - kHeader);
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<char>((length >> (8 * i)) & 0xff);
  std::uint32_t crc = crc_of(std::string_view(out).substr(4));
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((crc >> (8 * i)) & 0xff);
}

std::string encode_outcome(const Outcome& o) {
  std::string out;
  encode_outcome(o, out);
  return out;
}

std::vector<Outcome> decode_outcomes(std::string_view data, std::size_t* damaged) {
  std::vector<Outcome> out;
  std::size_t pos = 0;
  while (pos < data.size()) {
    Reader header(data.substr(pos, kHeader));
    std::uint32_t crc, length;
    if (!header.u32(crc) || !header.u32(length) || length > kMaxPayload ||
        data.size() - pos - kHeader < length)
      break;
    std::string_view checked = data.substr(pos + 4, 4 + length);
    if (crc_of(checked) != crc) break;
    auto o = decode_payload(checked.substr(4));
    if (!o) break;
    out.push_back(std::move(*o));
    pos += kHeader + length;
  }
  if (damaged) *damaged = data.size() - pos;
  return out;
}

Result<std::unique_ptr<OutcomeJournal>> OutcomeJournal::open(
    const std::filesystem::path& database) {
  std::filesystem::path prefix = database;
  prefix += "-outcomes";
  std::unique_ptr<OutcomeJournal> j(new OutcomeJournal(prefix));
  std::filesystem::path dir = prefix.has_parent_path() ? prefix.parent_path() : ".";
  std::string stem = prefix.filename().string();
  std::error_code ec;
  std::vector<std::uint64_t> found;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (std::uint64_t n = segment_number(it->path().filename().string(), stem)) found.push_back(n);
  }
  if (ec) return make_error("cannot list " + dir.string() + ": " + ec.message());
  std::sort(found.begin(), found.end());
  for (std::uint64_t n : found) {
    auto data = read_file(j->segment_path(n));
    if (!data) return data.error();
    std::size_t damaged = 0;
    for (Outcome& o : decode_outcomes(*data, &damaged)) j->recovered_.push_back(std::move(o));
    if (damaged) {
      j->problems_.push_back(j->segment_path(n).string() + ": the last " + std::to_string(damaged) +
                             " bytes are not a whole record (a write cut short) and were ignored");
    }
    j->recovered_segments_.push_back(n);
    j->next_ = n + 1;
  }
  return j;
}

std::filesystem::path OutcomeJournal::segment_path(std::uint64_t n) const {
  std::filesystem::path p = prefix_;
  p += "." + std::to_string(n);
  return p;
}

void OutcomeJournal::drop_recovered() {
  if (auto problem = remove(recovered_segments_)) problems_.push_back(*problem);
  recovered_segments_.clear();
  recovered_.clear();
}

bool OutcomeJournal::append(const Outcome& o) {
  // After a write failed (a full disk), every outcome until the next commit goes without the
  // journal: trying again for each would only create a file the next write cannot fill.
  if (failing_) return false;
  bool fresh = false;
  if (!fd_) {
    std::uint64_t n = next_++;
    fd_.reset(
        ::open(segment_path(n).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
    if (!fd_) {
      failing_ = true;
      return false;
    }
    written_.push_back(n);
    fresh = true;
  }
  encode_outcome(o, buffer_);
  std::string_view left = buffer_;
  while (!left.empty()) {
    ssize_t w = ::write(fd_.get(), left.data(), left.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      // A partial record may now end the segment: close it, so nothing follows the damage. The
      // segment stays until the store has committed everything appended to it, unless this was
      // its first record: then it holds nothing of use, and goes.
      fd_.reset();
      failing_ = true;
      if (fresh) {
        std::error_code ignored;
        std::filesystem::remove(segment_path(written_.back()), ignored);
        written_.pop_back();
      }
      return false;
    }
    left.remove_prefix(static_cast<std::size_t>(w));
  }
  return true;
}

std::vector<std::uint64_t> OutcomeJournal::seal() {
  fd_.reset();
  failing_ = false;
  std::vector<std::uint64_t> sealed;
  sealed.swap(written_);
  return sealed;
}

std::optional<std::string> OutcomeJournal::remove(const std::vector<std::uint64_t>& segments) {
  std::optional<std::string> problem;
  for (std::uint64_t n : segments) {
    std::error_code ec;
    std::filesystem::remove(segment_path(n), ec);
    if (ec && !problem) problem = "cannot delete " + segment_path(n).string() + ": " + ec.message();
  }
  return problem;
}

std::size_t apply_recovered(OutcomeJournal& journal, Store& store, UnixMillis now) {
  // Oldest first: keep the last outcome seen for each message.
  const auto& all = journal.recovered();
  std::unordered_map<MessageId, std::size_t> newest;
  for (std::size_t i = 0; i < all.size(); ++i) newest[all[i].id] = i;
  std::vector<Outcome> latest;
  latest.reserve(newest.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (newest[all[i].id] == i) latest.push_back(all[i]);
  }
  if (!latest.empty()) store.record_outcomes(latest, now);
  journal.drop_recovered();
  return latest.size();
}

}  // namespace bulkmail
