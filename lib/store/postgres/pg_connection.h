// libpq, held by RAII: one connection (PGconn), its results (PGresult), its prepared statements,
// transactions, pipelines of many statements in one round trip, and COPY. Text format throughout:
// parameters are sent as text (or NULL) and columns read as text, which libpq and PostgreSQL
// convert exactly for the types bulkmail stores (bigint, text, boolean, bytea).
//
// A failure of the database or the connection throws pg::Error, as the Store interface asks of a
// database failure; what a caller should expect (no row, a conflict) is a value of the result.
// Nothing here logs, and no message holds the connection string: it may carry a password.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulkmail::pg {

// What PostgreSQL or libpq reported. sqlstate is the five-character SQLSTATE ("23505", "40001"),
// or "" when the connection failed before the server said anything.
class Error : public std::runtime_error {
 public:
  Error(std::string sqlstate, const std::string& message)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }
  // Whether the connection is gone (class 08, an administrator's shutdown 57P01..57P03, or no
  // SQLSTATE at all): the next statement reconnects. What the transaction under way did is gone,
  // unless the connection was lost during its COMMIT, whose outcome is then unknown.
  bool connection_lost() const;
  // Whether the transaction lost a race it may simply retry: serialization failure (40001) or
  // deadlock (40P01).
  bool retryable() const { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }

 private:
  std::string sqlstate_;
};

// Statement parameters, $1 first: text, or NULL.
class Params {
 public:
  Params& add(std::string_view text) {
    values_.emplace_back(std::string(text));
    return *this;
  }
  Params& add(const std::string& text) { return add(std::string_view(text)); }
  Params& add(const char* text) { return add(std::string_view(text)); }
  Params& add(std::int64_t n) {
    values_.emplace_back(std::to_string(n));
    return *this;
  }
  Params& add(int n) { return add(static_cast<std::int64_t>(n)); }
  Params& add(bool b) {
    values_.emplace_back(b ? "t" : "f");
    return *this;
  }
  Params& add_null() {
    values_.emplace_back(std::nullopt);
    return *this;
  }
  // NULL when empty: the columns that hold NULL for "none" (a message's campaign).
  Params& add_or_null(std::string_view text) { return text.empty() ? add_null() : add(text); }
  template <class T>
  Params& add(const std::optional<T>& v) {
    return v ? add(*v) : add_null();
  }
  // Raw bytes as a bytea parameter (hex form, "\x0a1b...").
  Params& add_bytes(std::string_view bytes);
  // Integers as a bigint[] parameter ("{1,2,3}"), for `= ANY($n)`.
  Params& add_array(const std::vector<std::int64_t>& ids);
  // Texts as a text[] parameter, each quoted and escaped, for `= ANY($n)`.
  Params& add_array(const std::vector<std::string>& texts);

  int size() const { return static_cast<int>(values_.size()); }
  // For PQexecParams and kin: pointers into values_, null for NULL. Valid while *this is.
  std::vector<const char*> pointers() const;

 private:
  std::vector<std::optional<std::string>> values_;
};

// The rows a statement returned (or the count it changed). Columns are read by index, as text.
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* r) : r_(r) {}
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool empty() const { return rows() == 0; }
  // Rows an INSERT, UPDATE or DELETE changed (PQcmdTuples), 0 for anything else.
  std::int64_t affected() const;

  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string_view text(int row, int col) const {
    return {PQgetvalue(r_.get(), row, col),
            static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
  }
  std::string string(int row, int col) const { return std::string(text(row, col)); }
  // "" for NULL.
  std::string string_or_empty(int row, int col) const {
    return is_null(row, col) ? std::string() : string(row, col);
  }
  std::int64_t int64(int row, int col) const;  // throws pg::Error on NULL or non-numbers
  std::optional<std::int64_t> optional_int64(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return int64(row, col);
  }
  bool boolean(int row, int col) const { return text(row, col) == "t"; }
  std::string bytes(int row, int col) const;  // a bytea column, decoded from its hex form

  PGresult* get() const { return r_.get(); }

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> r_;
};

// A connection that comes back: when the server went away (a restart, a failover, a network cut),
// the next statement outside a transaction reconnects first, and prepares again what was
// prepared. Inside a transaction it never does (the statements before would be lost unseen): the
// statement throws with connection_lost(), the transaction is over, and the caller tries again.
class Connection {
 public:
  // Connects with libpq's own conventions: a URI (postgresql://...) or key=value words, and
  // libpq's PG* variables, passfile and service file for whatever the string leaves out. Throws
  // pg::Error naming the server's complaint, never the connection string.
  explicit Connection(const std::string& conninfo);

  // A statement without parameters, in the simple protocol: may hold several statements (DDL,
  // BEGIN). Throws on an error.
  Result exec(const std::string& sql);
  // One statement with parameters, not prepared.
  Result exec(const std::string& sql, const Params& params);
  // Prepares `sql` under `name` on this connection (once: it lives as long as the session).
  void prepare(const std::string& name, const std::string& sql);
  // Runs the statement prepared under `name`.
  Result run(const std::string& name, const Params& params);

  // COPY ... FROM STDIN: `rows` is called for the data until it returns false; each call appends
  // text-format COPY rows (tab-separated, escaped with copy_text, one "\n" a row) to its buffer.
  // Returns the rows copied.
  std::int64_t copy_in(const std::string& sql, const std::function<bool(std::string&)>& rows);

  // Whether the connection is still usable (CONNECTION_OK, not in a failed transaction).
  bool ok() const;
  // How many times the connection was made again after the server went away.
  int reconnects() const { return reconnects_; }
  // The server process behind the connection (pg_backend_pid).
  int backend_pid() const { return PQbackendPID(conn_.get()); }
  int socket() const { return PQsocket(conn_.get()); }
  PGconn* get() const { return conn_.get(); }
  // Connects again (PQreset, keeping the settings and the notice receiver), forgetting that the
  // old session ended. Prepares nothing: for a caller that reconnects by itself (the listener).
  void reset();

 private:
  friend class Pipeline;
  friend class Transaction;
  // Turns a finished result into a Result, or throws pg::Error for a failed one.
  Result checked(PGresult* r);
  // Before a statement: reconnects (and prepares again) when the connection is gone and no
  // transaction of ours is open; throws when it cannot.
  void ensure();

  struct Finish {
    void operator()(PGconn* c) const { PQfinish(c); }
  };
  // Set by libpq's notice receiver when the server's last words came (a restart, an
  // administrator ending the session): the session is over even before the socket closes. On
  // the heap, so that the receiver's pointer stays good when the Connection moves; declared
  // before the connection, so that it outlives it.
  std::unique_ptr<bool> ended_ = std::make_unique<bool>(false);
  std::unique_ptr<PGconn, Finish> conn_;
  std::vector<std::pair<std::string, std::string>> prepared_;  // name, SQL: made again on reconnect
  bool in_transaction_ = false;
  int reconnects_ = 0;
};

// One transaction on a connection: BEGIN when made (or `begin`, such as "BEGIN ISOLATION LEVEL
// SERIALIZABLE"), COMMIT by commit(), ROLLBACK when destroyed without it (an exception on the
// way), unless the connection is gone.
class Transaction {
 public:
  explicit Transaction(Connection& c, const char* begin = "BEGIN");
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  void commit();

 private:
  Connection& c_;
  bool done_ = false;
};

// libpq's pipeline mode (PostgreSQL 14 and later): many prepared statements sent at once and
// their results read in order, one round trip for all. Used for batches (a group commit of
// outcomes). run() queues a statement; results() sends them all, waits, and returns each one's
// Result in order, throwing the first failure after reading the rest.
class Pipeline {
 public:
  explicit Pipeline(Connection& c);
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;
  ~Pipeline();
  void run(const std::string& name, const Params& params);
  std::vector<Result> results();

 private:
  // Syncs, reads back every statement sent since the last sync, and returns their results.
  std::vector<Result> read_back();

  Connection& c_;
  std::vector<Result> held_;  // results read back early, when many statements were queued
  int queued_ = 0;
  bool open_ = false;
};

// A message of libpq's (PQerrorMessage, PQresultErrorMessage) without its trailing newline; ""
// for none.
std::string libpq_message(const char* message);

// `s` escaped for a text-format COPY row: backslash, tab, newline and carriage return.
std::string copy_text(std::string_view s);

}  // namespace bulkmail::pg
