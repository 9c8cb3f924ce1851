#include "store/outcome_journal.h"

#include <doctest/doctest.h>
#include <zlib.h>

#include <limits>

#include "file_size_limit.h"
#include "store/sqlite/sqlite_store.h"
#include "temp_dir.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

// A queue at `db` holding one message, leased by a daemon that then died; returns its id.
MessageId lease_one(const std::filesystem::path& db) {
  SqliteStore store(db.string());
  std::vector<NewMessage> m{{"", "customer-update", "pat@example.com", "{}"}};
  MessageId id = store.enqueue(m, "test", 1000)[0].id;
  REQUIRE(store.claim_due("old-daemon", 10, 2000, 60'000).size() == 1);
  return id;
}

Outcome sample(MessageId id, MessageState state = MessageState::sent) {
  Outcome o;
  o.id = id;
  o.state = state;
  o.reply_code = 250;
  o.reply = "2.0.0 Ok: queued as " + std::to_string(id) + " (Zürich)";
  o.next_attempt_at = 1'700'000'000'123;
  o.message_id_header = "<" + std::to_string(id) + ".abc@mail.example.com>";
  return o;
}

void check_same(const Outcome& a, const Outcome& b) {
  CHECK(a.id == b.id);
  CHECK(a.state == b.state);
  CHECK(a.reply_code == b.reply_code);
  CHECK(a.reply == b.reply);
  CHECK(a.next_attempt_at == b.next_attempt_at);
  CHECK(a.message_id_header == b.message_id_header);
  CHECK(a.bounce_class == b.bounce_class);
}

}  // namespace

TEST_CASE("an outcome survives encoding, every field of it") {
  Outcome bounced = sample(7, MessageState::failed);
  bounced.reply_code = 550;
  bounced.bounce_class = BounceClass::hard;
  bounced.message_id_header.clear();
  Outcome deferred = sample(1LL << 40, MessageState::deferred);
  deferred.reply_code = 0;
  std::string bytes = encode_outcome(bounced) + encode_outcome(deferred);
  std::size_t damaged = 99;
  auto back = decode_outcomes(bytes, &damaged);
  REQUIRE(back.size() == 2);
  check_same(back[0], bounced);
  check_same(back[1], deferred);
  CHECK(damaged == 0);
}

TEST_CASE("the record format: CRC-32 of length and payload, little-endian length, payload") {
  // Segments left by a stopped daemon are read by the next one, possibly a newer version: the
  // bytes are pinned here, built independently of the encoder.
  Outcome o;
  o.id = 0x0102;
  o.state = MessageState::deferred;
  o.reply_code = 451;
  o.reply = "try later";
  o.next_attempt_at = 5;
  o.bounce_class = BounceClass::unknown;
  auto le = [](std::uint64_t v, int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return s;
  };
  std::string payload = std::string(1, '\x01') + le(0x0102, 8) + le(8, 4) + "deferred" +
                        le(451, 4) + le(5, 8) + std::string(1, '\0') + le(9, 4) + "try later" +
                        le(0, 4);
  std::string checked = le(payload.size(), 4) + payload;
  auto crc =
      crc32(0, reinterpret_cast<const Bytef*>(checked.data()), static_cast<uInt>(checked.size()));
  std::string expected = le(crc, 4) + checked;
  CHECK(encode_outcome(o) == expected);
  std::string reused = "left over from a longer record, which must not survive";
  encode_outcome(o, reused);
  CHECK(reused == expected);
}

TEST_CASE("reading stops at a record cut short or altered, and says how much was left") {
  std::string first = encode_outcome(sample(1));
  std::string second = encode_outcome(sample(2));
  SUBCASE("cut short") {
    std::size_t damaged = 0;
    auto back = decode_outcomes(first + second.substr(0, second.size() - 3), &damaged);
    REQUIRE(back.size() == 1);
    CHECK(back[0].id == 1);
    CHECK(damaged == second.size() - 3);
  }
  SUBCASE("a byte changed") {
    std::string bytes = first + second;
    bytes[first.size() + 20] ^= 0x01;
    std::size_t damaged = 0;
    auto back = decode_outcomes(bytes, &damaged);
    REQUIRE(back.size() == 1);
    CHECK(damaged == second.size());
  }
  SUBCASE("an impossible length") {
    std::string bytes = first + std::string("\0\0\0\0\xff\xff\xff\x7f", 8);
    std::size_t damaged = 0;
    CHECK(decode_outcomes(bytes, &damaged).size() == 1);
    CHECK(damaged == 8);
  }
}

TEST_CASE("segments left by a daemon are read back in order, then removed") {
  TempDir dir;
  auto db = dir / "queue.db";
  {
    auto j = OutcomeJournal::open(db);
    REQUIRE(j);
    CHECK((*j)->recovered().empty());
    CHECK((*j)->append(sample(1)));
    CHECK((*j)->append(sample(2)));
    auto sealed = (*j)->seal();
    REQUIRE(sealed.size() == 1);
    CHECK(std::filesystem::exists((*j)->segment_path(sealed[0])));
    CHECK((*j)->append(sample(3)));
    CHECK((*j)->seal().size() == 1);
    CHECK((*j)->seal().empty());  // nothing appended since
    // The daemon dies here: neither segment was removed.
  }
  auto j = OutcomeJournal::open(db);
  REQUIRE(j);
  REQUIRE((*j)->recovered().size() == 3);
  CHECK((*j)->recovered()[0].id == 1);
  CHECK((*j)->recovered()[2].id == 3);
  CHECK((*j)->problems().empty());
  (*j)->drop_recovered();
  CHECK((*j)->recovered().empty());
  CHECK_FALSE(std::filesystem::exists((*j)->segment_path(1)));
  CHECK_FALSE(std::filesystem::exists((*j)->segment_path(2)));
  // New segments never reuse a number a reader might still confuse with old ones.
  CHECK((*j)->append(sample(4)));
  auto sealed = (*j)->seal();
  REQUIRE(sealed.size() == 1);
  CHECK(sealed[0] == 3);
  (*j)->remove(sealed);
  CHECK_FALSE(std::filesystem::exists((*j)->segment_path(3)));
}

TEST_CASE("a torn last record is reported and the rest is kept") {
  TempDir dir;
  auto db = dir / "queue.db";
  std::string whole = encode_outcome(sample(1));
  std::string torn = encode_outcome(sample(2)).substr(0, 10);
  dir.write("queue.db-outcomes.5", whole + torn);
  dir.write("queue.db-outcomes.x", "not a segment");
  dir.write("other.db-outcomes.1", encode_outcome(sample(9)));
  auto j = OutcomeJournal::open(db);
  REQUIRE(j);
  REQUIRE((*j)->recovered().size() == 1);
  CHECK((*j)->recovered()[0].id == 1);
  REQUIRE((*j)->problems().size() == 1);
  CHECK((*j)->problems()[0].find("queue.db-outcomes.5: the last 10 bytes") != std::string::npos);
  CHECK((*j)->append(sample(3)));
  CHECK((*j)->seal() == std::vector<std::uint64_t>{6});
}

TEST_CASE("an append that cannot be written says so") {
  TempDir dir;
  auto j = OutcomeJournal::open(dir / "queue.db");
  REQUIRE(j);
  std::filesystem::remove_all(dir.path());  // the state directory is gone
  CHECK_FALSE((*j)->append(sample(1)));
  CHECK((*j)->seal().empty());
}

TEST_CASE("recovered outcomes are committed before anything else, and only to the lease") {
  TempDir dir;
  auto db = dir / "queue.db";
  MessageId id = lease_one(db);
  {
    auto j = OutcomeJournal::open(db);
    REQUIRE(j);
    CHECK((*j)->append(sample(id)));
    CHECK((*j)->append(sample(id + 1000)));  // a message that is not leased: ignored
  }
  SqliteStore store(db.string());
  auto j = OutcomeJournal::open(db);
  REQUIRE(j);
  CHECK(apply_recovered(**j, store, 3000) == 2);
  CHECK(store.counts(std::nullopt)[MessageState::sent] == 1);
  CHECK(store.recover_leases(std::numeric_limits<UnixMillis>::max(), 4000, std::nullopt)
            .possible_duplicates.empty());
  CHECK_FALSE(std::filesystem::exists((*j)->segment_path(1)));
  auto again = OutcomeJournal::open(db);
  REQUIRE(again);
  CHECK((*again)->recovered().empty());
}

TEST_CASE("replay applies each message's newest outcome, not a stale one left in an old segment") {
  TempDir dir;
  auto db = dir / "queue.db";
  MessageId id = lease_one(db);
  {
    auto j = OutcomeJournal::open(db);
    REQUIRE(j);
    // A deferral whose segment was committed but could not be deleted, then the same message
    // claimed again and sent, journaled in a later segment before the daemon died.
    CHECK((*j)->append(
        {id, MessageState::deferred, 451, "4.3.0 try later", 5000, "", BounceClass::unknown}));
    (*j)->seal();
    CHECK((*j)->append(
        {id, MessageState::sent, 250, "2.0.0 Ok", 0, "<m@example.com>", BounceClass::unknown}));
  }
  SqliteStore store(db.string());
  auto j = OutcomeJournal::open(db);
  REQUIRE(j);
  CHECK((*j)->recovered().size() == 2);
  CHECK(apply_recovered(**j, store, 3000) == 1);
  // Sent: never queued again, so never sent twice.
  CHECK(store.counts(std::nullopt)[MessageState::sent] == 1);
  CHECK(store.counts(std::nullopt)[MessageState::deferred] == 0);
}

TEST_CASE("a segment that cannot be deleted is reported") {
  TempDir dir;
  auto j = OutcomeJournal::open(dir / "queue.db");
  REQUIRE(j);
  CHECK((*j)->append(sample(1)));
  auto sealed = (*j)->seal();
  REQUIRE(sealed.size() == 1);
  // A folder in its place cannot be removed as a file.
  std::filesystem::remove((*j)->segment_path(sealed[0]));
  std::filesystem::create_directory((*j)->segment_path(sealed[0]));
  std::filesystem::create_directory((*j)->segment_path(sealed[0]) / "x");
  auto problem = (*j)->remove(sealed);
  REQUIRE(problem);
  CHECK(problem->find("cannot delete") != std::string::npos);
  CHECK_FALSE((*j)->remove({}));
}

TEST_CASE("a full disk leaves no empty segments behind, and the journal works again after a seal") {
  TempDir dir;
  auto db = dir / "q.db";
  auto opened = OutcomeJournal::open(db);
  REQUIRE(opened);
  OutcomeJournal& journal = **opened;
  auto segments = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path()))
      n += e.path().filename().string().rfind("q.db-outcomes.", 0) == 0;
    return n;
  };
  REQUIRE(journal.append(sample(1)));
  auto first = journal.seal();  // committed, say, but not yet deleted
  {
    // No file may grow at all: the next segment is created, cannot take its first record, and
    // goes; the outcomes after it are not tried. (The dispatcher hands back hundreds of buffered
    // messages at once when the database fails, each an outcome.)
    FileSizeLimit full(0);
    for (MessageId id = 2; id < 500; ++id) CHECK_FALSE(journal.append(sample(id)));
  }
  CHECK(segments() == 1);  // the first, holding message 1
  // The disk has room again, but until a commit the journal is not tried.
  CHECK_FALSE(journal.append(sample(500)));
  CHECK(journal.seal().empty());
  CHECK(journal.append(sample(501)));
  CHECK(segments() == 2);
  CHECK_FALSE(journal.remove(journal.seal()));
  CHECK_FALSE(journal.remove(first));
  CHECK(segments() == 0);
}
