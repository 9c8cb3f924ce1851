#include "store/postgres/pg_copy.h"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <sqlite3.h>

#include <stdexcept>

#include "store/postgres/pg_schema.h"

namespace bulkmail {
namespace {

// One table as both schemas have it: the same columns, by name. `bytea` lists the columns that
// are bytea in PostgreSQL (a BLOB, or a number kept in meta, in SQLite).
struct Table {
  const char* name;
  const char* columns;
  std::vector<int> bytea;
};

// In the order the evidence trigger needs: suppressions before the events that prove them.
const Table kTables[] = {
    {"campaigns", "name, origin, created_at, paused_at, pause_reason, resumed_at", {}},
    {"messages",
     "id, campaign, category, recipient, vars, state, attempts, next_attempt_at, lease_owner, "
     "lease_expires_at, last_reply_code, last_reply, message_id, created_at, updated_at, feedback",
     {}},
    {"suppressions", "address, category, reason, source, created_at", {}},
    {"events", "id, at, type, address, message, category, campaign, source, detail", {}},
    {"dispatch_state", "id, state, detail, updated_at, config_problem", {}},
    {"soft_bounces", "address, count, first_at, last_message, last_sent_at", {}},
    {"received_reports", "digest, at", {0}},
    {"feedback_counters", "name, count", {}},
    // Last, replacing what the migration made: the salt forgotten addresses are kept under.
    {"meta", "key, value", {1}},
};

std::string hex_bytea(const void* data, int size) {
  static const char digits[] = "0123456789abcdef";
  std::string out = "\\x";
  const auto* p = static_cast<const unsigned char*>(data);
  for (int i = 0; i < size; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0xf];
  }
  return out;
}

// One SQLite value as a field of a text-format COPY row.
std::string copy_field(const SQLite::Column& c, bool bytea) {
  switch (c.getType()) {
    case SQLITE_NULL:
      return "\\N";
    case SQLITE_INTEGER:
      if (bytea) {
        std::string text = std::to_string(c.getInt64());  // meta's walk positions
        return pg::copy_text(hex_bytea(text.data(), static_cast<int>(text.size())));
      }
      return std::to_string(c.getInt64());
    case SQLITE_FLOAT:
      return std::to_string(c.getDouble());
    default:  // TEXT or BLOB
      if (bytea) return pg::copy_text(hex_bytea(c.getBlob(), c.getBytes()));
      return pg::copy_text(std::string(static_cast<const char*>(c.getBlob()),
                                       static_cast<std::size_t>(c.getBytes())));
  }
}

std::int64_t copy_table(SQLite::Database& from, pg::Connection& to, const Table& t) {
  SQLite::Statement rows(from, std::string("SELECT ") + t.columns + " FROM " + t.name);
  int columns = rows.getColumnCount();
  return to.copy_in(
      std::string("COPY ") + t.name + " (" + t.columns + ") FROM STDIN", [&](std::string& out) {
        for (int n = 0; n < 1000; ++n) {
          if (!rows.executeStep()) return false;
          for (int i = 0; i < columns; ++i) {
            if (i) out += '\t';
            bool bytea = std::find(t.bytea.begin(), t.bytea.end(), i) != t.bytea.end();
            out += copy_field(rows.getColumn(i), bytea);
          }
          out += '\n';
        }
        return true;
      });
}

std::int64_t count(SQLite::Database& db, const char* table) {
  return db.execAndGet(std::string("SELECT count(*) FROM ") + table).getInt64();
}

std::int64_t count(pg::Connection& c, const char* table) {
  return c.exec(std::string("SELECT count(*) FROM ") + table).int64(0, 0);
}

}  // namespace

CopyCounts copy_sqlite_to_postgres(const std::string& sqlite_path, pg::Connection& to) {
  SQLite::Database from(sqlite_path, SQLite::OPEN_READONLY);
  migrate_postgres_schema(to);
  for (const Table& t : kTables) {
    if (std::string_view(t.name) == "meta") continue;  // the migration's own salt
    if (to.exec(std::string("SELECT EXISTS (SELECT 1 FROM ") + t.name + ")").boolean(0, 0)) {
      throw std::runtime_error(std::string("the PostgreSQL database is not empty (its ") + t.name +
                               " table holds rows): store copy fills an empty database only");
    }
  }
  // One read transaction: every table from the same snapshot, whoever writes the file meanwhile.
  from.exec("BEGIN");
  pg::Transaction tx(to);
  to.exec("DELETE FROM meta");
  CopyCounts counts;
  for (const Table& t : kTables) {
    std::int64_t copied = copy_table(from, to, t);
    std::int64_t in_sqlite = count(from, t.name);
    std::int64_t in_postgres = count(to, t.name);
    if (copied != in_sqlite || in_postgres != in_sqlite) {
      throw std::runtime_error(
          std::string("the copy of ") + t.name + " does not add up: " + std::to_string(in_sqlite) +
          " rows in SQLite, " + std::to_string(in_postgres) + " in PostgreSQL; nothing was kept");
    }
    counts.emplace_back(t.name, copied);
  }
  // The ids go on where SQLite's would have: never one that events still name (SQLite's
  // sqlite_sequence remembers messages deleted since).
  std::int64_t message_seq =
      from.execAndGet(
              "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0), "
              "coalesce((SELECT max(id) FROM messages), 0))")
          .getInt64();
  std::int64_t event_seq = from.execAndGet("SELECT coalesce(max(id), 0) FROM events").getInt64();
  for (auto [table, last] : {std::pair{"messages", message_seq}, std::pair{"events", event_seq}}) {
    to.exec(
        "SELECT setval(pg_get_serial_sequence($1, 'id'), greatest($2::bigint, 1), $2::bigint > 0)",
        pg::Params().add(table).add(last));
  }
  tx.commit();
  from.exec("COMMIT");
  return counts;
}

}  // namespace bulkmail
