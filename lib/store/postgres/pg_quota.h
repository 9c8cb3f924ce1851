// The shared throttle on PostgreSQL (store/cluster_quota.h): rates as GCRA rows taken several
// tokens at a time (bulkmail_take_tokens, pg_schema.cpp), connection slots as session advisory
// locks on a connection of its own, and the daily limit as a counter per UTC day.
//
// Why these two mechanisms: a rate needs a shared clock and a shared account, and a GCRA row is
// both in one 8-byte value, changed by one locked update; asking for a batch of tokens at once
// makes the cost one round trip per batch. A connection cap needs slots that come back when their
// holder dies without anyone noticing; a session advisory lock is exactly that (PostgreSQL frees
// it when the session ends), with no lease to renew and no row to clean up.
//
// Not thread-safe: the daemon's quota worker owns it.
#pragma once

#include <string>

#include "store/cluster_quota.h"
#include "store/postgres/pg_connection.h"

namespace bulkmail {

class PgClusterQuota final : public ClusterQuota {
 public:
  // Connects with `conninfo` (as PostgresStore does); the schema must be migrated already.
  explicit PgClusterQuota(const std::string& conninfo);

  QuotaAnswer exchange(const QuotaAsk& ask) override;

  pg::Connection& connection() { return c_; }  // for the tests

 private:
  void take_tokens(const QuotaAsk& ask, QuotaAnswer& answer);
  std::vector<int> take_slots(const SlotAsk& ask);

  pg::Connection c_;
};

}  // namespace bulkmail
