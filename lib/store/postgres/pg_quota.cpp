#include "store/postgres/pg_quota.h"

#include <charconv>

namespace bulkmail {
namespace {

// A domain's slots are advisory locks on (hash of the domain, slot number): the two-integer form,
// which never meets the migration's one-bigint lock.
constexpr const char* kSlotKey = "hashtext('bulkmail slot ' || $1)";

std::string decimal(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

}  // namespace

PgClusterQuota::PgClusterQuota(const std::string& conninfo) : c_(conninfo) {
  c_.prepare("take_tokens",
             "SELECT o_index, o_granted, o_wait_us FROM bulkmail_take_tokens("
             "$1::text[], $2::text[]::float8[], $3::text[]::float8[], $4::text[]::integer[])");
  c_.prepare("take_daily", "SELECT o_granted, o_used FROM bulkmail_take_daily($1, $2, $3, $4)");
  c_.prepare("return_daily",
             "UPDATE throttle_days SET used = greatest(0, used - $2) WHERE day = $1");
  // CASE, not AND: the lock must not be tried for a slot this session holds already (advisory
  // locks count: taking one twice would need two unlocks).
  c_.prepare("take_slots", std::string("SELECT s FROM generate_series(0, $2 - 1) s WHERE CASE "
                                       "WHEN s = ANY($3::text[]::integer[]) THEN false ELSE "
                                       "pg_try_advisory_lock(") +
                               kSlotKey + ", s) END LIMIT $4");
  c_.prepare("release_slot", std::string("SELECT pg_advisory_unlock(") + kSlotKey + ", $2)");
}

void PgClusterQuota::take_tokens(const QuotaAsk& ask, QuotaAnswer& answer) {
  answer.tokens.assign(ask.tokens.size(), {});
  if (ask.tokens.empty()) return;
  std::vector<std::string> keys, rates, bursts, wants;
  for (const TokenAsk& t : ask.tokens) {
    keys.push_back(t.key);
    rates.push_back(decimal(t.per_second));
    bursts.push_back(decimal(t.burst));
    wants.push_back(std::to_string(t.want));
  }
  pg::Result r =
      c_.run("take_tokens",
             pg::Params().add_array(keys).add_array(rates).add_array(bursts).add_array(wants));
  for (int row = 0; row < r.rows(); ++row) {
    auto i = static_cast<std::size_t>(r.int64(row, 0) - 1);  // arrays count from 1
    if (i >= answer.tokens.size()) continue;
    answer.tokens[i].granted = static_cast<int>(r.int64(row, 1));
    answer.tokens[i].wait = r.int64(row, 2);
  }
}

std::vector<int> PgClusterQuota::take_slots(const SlotAsk& ask) {
  std::vector<std::string> held;
  for (int s : ask.held) held.push_back(std::to_string(s));
  pg::Result r =
      c_.run("take_slots", pg::Params().add(ask.domain).add(ask.cap).add_array(held).add(ask.want));
  std::vector<int> taken;
  for (int row = 0; row < r.rows(); ++row) taken.push_back(static_cast<int>(r.int64(row, 0)));
  return taken;
}

QuotaAnswer PgClusterQuota::exchange(const QuotaAsk& ask) {
  QuotaAnswer answer;
  // Releases first: a slot handed back is free for the asks below, here or elsewhere.
  for (const auto& [domain, slot] : ask.release_slots) {
    c_.run("release_slot", pg::Params().add(domain).add(slot));
  }
  if (ask.daily_return > 0) {
    c_.run("return_daily", pg::Params().add(ask.day).add(ask.daily_return));
  }
  take_tokens(ask, answer);
  if (ask.daily_want > 0) {
    pg::Result r = c_.run(
        "take_daily",
        pg::Params().add(ask.day).add(ask.daily_limit).add(ask.daily_want).add(ask.sent_today));
    answer.daily_granted = r.int64(0, 0);
    answer.daily_used = r.int64(0, 1);
  }
  // Slots last: should a statement fail after some were taken, the caller learns nothing of this
  // exchange, so those go back now (on a session still alive), or this session would hold them
  // unknown to anyone.
  std::vector<int> taken_in_session;
  try {
    for (const SlotAsk& s : ask.slots) {
      answer.slots.push_back(take_slots(s));
      taken_in_session.push_back(c_.reconnects());
    }
  } catch (...) {
    for (std::size_t i = 0; i < answer.slots.size() && c_.ok(); ++i) {
      if (taken_in_session[i] != c_.reconnects()) continue;
      for (int slot : answer.slots[i]) {
        try {
          c_.run("release_slot", pg::Params().add(ask.slots[i].domain).add(slot));
        } catch (...) {
          break;  // the session is going, and its locks with it
        }
      }
    }
    throw;
  }
  // A reconnect loses the session's locks: those taken before it are gone (the caller drops
  // what it held when `session` changes).
  answer.session = static_cast<std::uint64_t>(c_.reconnects());
  for (std::size_t i = 0; i < answer.slots.size(); ++i) {
    if (taken_in_session[i] != c_.reconnects()) answer.slots[i].clear();
  }
  return answer;
}

}  // namespace bulkmail
