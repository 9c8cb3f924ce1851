#include "store/postgres/pg_connection.h"

#include <poll.h>

#include <charconv>
#include <cstring>

namespace bulkmail::pg {
namespace {

// A pipeline reads its results back after this many statements: with a blocking connection, the
// server would otherwise fill the socket with results while libpq still writes statements.
constexpr int kMaxPipelined = 256;

// What the server said of a failed result; the connection's message when it said nothing.
Error error_of(PGconn* conn, const PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = libpq_message(r ? PQresultErrorMessage(r) : nullptr);
  if (message.empty()) message = libpq_message(PQerrorMessage(conn));
  if (message.empty()) message = "the PostgreSQL connection failed";
  return Error(state ? state : "", message);
}

// NOTICEs (an IF NOT EXISTS that skipped, say) are not bulkmail's to print on stderr. One that
// ends the session is noted in the connection's `ended` flag: a FATAL (57P01 for a restart or
// pg_terminate_backend), or the warning an immediate shutdown or a crash restart sends instead
// (57P01, 57P02 crash of another process, 57P03 cannot connect now).
void on_notice(void* ended, const PGresult* notice) {
  const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  const char* state = PQresultErrorField(notice, PG_DIAG_SQLSTATE);
  bool fatal =
      severity && (std::strcmp(severity, "FATAL") == 0 || std::strcmp(severity, "PANIC") == 0);
  bool going = state && (std::strcmp(state, "57P01") == 0 || std::strcmp(state, "57P02") == 0 ||
                         std::strcmp(state, "57P03") == 0);
  if (fatal || going) *static_cast<bool*>(ended) = true;
}

char hex_digit(unsigned v) { return static_cast<char>(v < 10 ? '0' + v : 'a' + (v - 10)); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool Error::connection_lost() const {
  return sqlstate_.empty() || sqlstate_.starts_with("08") || sqlstate_ == "57P01" ||
         sqlstate_ == "57P02" || sqlstate_ == "57P03";
}

Params& Params::add_bytes(std::string_view bytes) {
  std::string hex = "\\x";
  hex.reserve(2 + bytes.size() * 2);
  for (unsigned char c : bytes) {
    hex += hex_digit(c >> 4);
    hex += hex_digit(c & 0xf);
  }
  values_.emplace_back(std::move(hex));
  return *this;
}

Params& Params::add_array(const std::vector<std::int64_t>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  values_.emplace_back(out + "}");
  return *this;
}

Params& Params::add_array(const std::vector<std::string>& texts) {
  // Each element double-quoted, its quotes and backslashes escaped: an array literal
  // (PostgreSQL's "Array Value Input") that no text can break out of.
  std::string out = "{";
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : texts[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  values_.emplace_back(out + "}");
  return *this;
}

std::vector<const char*> Params::pointers() const {
  std::vector<const char*> out;
  out.reserve(values_.size());
  for (const auto& v : values_) out.push_back(v ? v->c_str() : nullptr);
  return out;
}

std::int64_t Result::affected() const {
  const char* n = r_ ? PQcmdTuples(r_.get()) : "";
  std::int64_t v = 0;
  std::from_chars(n, n + std::strlen(n), v);
  return v;
}

std::int64_t Result::int64(int row, int col) const {
  if (is_null(row, col)) {
    throw Error("22P02", "column " + std::to_string(col) + " of row " + std::to_string(row) +
                             " is NULL where a number was expected");
  }
  std::string_view t = text(row, col);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || end != t.data() + t.size()) {
    throw Error("22P02", "column " + std::to_string(col) + " of row " + std::to_string(row) +
                             " is not a whole number");
  }
  return v;
}

std::string Result::bytes(int row, int col) const {
  std::string_view t = text(row, col);
  if (!t.starts_with("\\x")) {
    throw Error("22P02", "column " + std::to_string(col) + " is not bytea in hex form");
  }
  t.remove_prefix(2);
  std::string out;
  out.reserve(t.size() / 2);
  for (std::size_t i = 0; i + 1 < t.size(); i += 2) {
    int hi = hex_value(t[i]), lo = hex_value(t[i + 1]);
    if (hi < 0 || lo < 0) throw Error("22P02", "column " + std::to_string(col) + " has bad hex");
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

Connection::Connection(const std::string& conninfo) {
  // Parsed first, so that a malformed string is refused without libpq's message, which may quote
  // the part it could not read: that part may be the password.
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &parse_error);
  if (!parsed) {
    PQfreemem(parse_error);
    throw Error("",
                "the database setting is not a PostgreSQL connection string libpq can read "
                "(postgresql://user@host:port/dbname?sslmode=... or key=value words)");
  }
  PQconninfoFree(parsed);
  // expand_dbname: `conninfo` is a whole connection string; libpq's PG* variables, passfile and
  // service file fill in what it leaves out. The server's process list names bulkmail. Before
  // it, bulkmail's defaults, which the string overrides: a connect that gives up after 10 s, TCP
  // keepalives that notice a cut network within about 30 s rather than the system's 2 hours
  // while the connection is idle, and a 30 s limit on data sent and not acknowledged, for a
  // statement under way when the network is cut (else TCP retries for about 15 minutes): a
  // daemon waiting on a dead server pauses, and says so, instead of hanging.
  const char* keys[] = {
      "connect_timeout",  "keepalives_idle", "keepalives_interval",       "keepalives_count",
      "tcp_user_timeout", "dbname",          "fallback_application_name", nullptr};
  const char* values[] = {"10", "15", "5", "3", "30000", conninfo.c_str(), "bulkmail", nullptr};
  conn_.reset(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!conn_) throw Error("", "out of memory connecting to PostgreSQL");
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    throw Error("", "cannot connect to PostgreSQL: " + libpq_message(PQerrorMessage(conn_.get())));
  }
  PQsetNoticeReceiver(conn_.get(), on_notice, ended_.get());
}

Result Connection::checked(PGresult* r) {
  Result result(r);
  if (!r) throw error_of(conn_.get(), nullptr);
  switch (PQresultStatus(r)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_COPY_IN:
    case PGRES_PIPELINE_SYNC:
      return result;
    default:
      throw error_of(conn_.get(), r);
  }
}

void Connection::ensure() {
  if (PQstatus(conn_.get()) == CONNECTION_OK && !in_transaction_) {
    // A server that ended the session while it sat idle (a restart, an administrator) has said
    // so on the socket already: read that now, so that the statement goes to a new session
    // rather than failing on the old one (which would look like a second, short outage).
    // (Its last words, a FATAL notice, say the session is over even when the close has not
    // come yet, as on a busy machine it may not for a while. Words without a FATAL: wait a few
    // milliseconds for a close. Nothing comes at all in the usual case: one poll.)
    for (int reads = 0; reads < 4 && PQstatus(conn_.get()) == CONNECTION_OK && !*ended_; ++reads) {
      pollfd p{PQsocket(conn_.get()), POLLIN, 0};
      if (p.fd < 0 || ::poll(&p, 1, reads == 0 ? 0 : 20) <= 0) break;
      if (PQconsumeInput(conn_.get()) != 1) break;
      PQisBusy(conn_.get());  // parses what was read: a FATAL goes to the notice receiver
    }
  }
  if (PQstatus(conn_.get()) == CONNECTION_OK && !(*ended_ && !in_transaction_)) return;
  if (in_transaction_) {
    throw Error("08006", "the connection to PostgreSQL was lost inside a transaction");
  }
  reset();
  if (PQstatus(conn_.get()) != CONNECTION_OK) {
    throw Error("08006",
                "cannot reconnect to PostgreSQL: " + libpq_message(PQerrorMessage(conn_.get())));
  }
  ++reconnects_;
  for (const auto& [name, sql] : prepared_) {
    checked(PQprepare(conn_.get(), name.c_str(), sql.c_str(), 0, nullptr));
  }
}

void Connection::reset() {
  PQreset(conn_.get());
  *ended_ = false;
}

Result Connection::exec(const std::string& sql) {
  ensure();
  return checked(PQexec(conn_.get(), sql.c_str()));
}

Result Connection::exec(const std::string& sql, const Params& params) {
  ensure();
  auto p = params.pointers();
  return checked(PQexecParams(conn_.get(), sql.c_str(), params.size(), nullptr, p.data(), nullptr,
                              nullptr, 0));
}

void Connection::prepare(const std::string& name, const std::string& sql) {
  ensure();
  checked(PQprepare(conn_.get(), name.c_str(), sql.c_str(), 0, nullptr));
  prepared_.emplace_back(name, sql);
}

Result Connection::run(const std::string& name, const Params& params) {
  ensure();
  auto p = params.pointers();
  return checked(
      PQexecPrepared(conn_.get(), name.c_str(), params.size(), p.data(), nullptr, nullptr, 0));
}

std::int64_t Connection::copy_in(const std::string& sql,
                                 const std::function<bool(std::string&)>& rows) {
  ensure();
  checked(PQexec(conn_.get(), sql.c_str()));  // PGRES_COPY_IN
  auto finish = [&](const char* failure) {
    PQputCopyEnd(conn_.get(), failure);
    Result last;
    std::optional<Error> error;
    while (PGresult* r = PQgetResult(conn_.get())) {
      Result held(r);
      ExecStatusType s = PQresultStatus(r);
      if (s != PGRES_COMMAND_OK && !error) error = error_of(conn_.get(), r);
      if (s == PGRES_COMMAND_OK) last = std::move(held);
    }
    if (error && !failure) throw *error;
    return last.affected();
  };
  std::string buffer;
  try {
    bool more = true;
    while (more) {
      buffer.clear();
      more = rows(buffer);
      if (!buffer.empty() &&
          PQputCopyData(conn_.get(), buffer.data(), static_cast<int>(buffer.size())) != 1) {
        // The server refused a row and ended the copy: its own error is among the results.
        Error local = error_of(conn_.get(), nullptr);
        std::optional<Error> server;
        while (PGresult* r = PQgetResult(conn_.get())) {
          if (!server && PQresultStatus(r) == PGRES_FATAL_ERROR) server = error_of(conn_.get(), r);
          PQclear(r);
        }
        throw server ? *server : local;
      }
    }
  } catch (...) {
    finish("bulkmail stopped the copy");  // the server discards every row of it
    throw;
  }
  return finish(nullptr);
}

bool Connection::ok() const {
  if (PQstatus(conn_.get()) != CONNECTION_OK) return false;
  PGTransactionStatusType t = PQtransactionStatus(conn_.get());
  return t != PQTRANS_INERROR && t != PQTRANS_UNKNOWN;
}

Transaction::Transaction(Connection& c, const char* begin) : c_(c) {
  c_.exec(begin);
  c_.in_transaction_ = true;
}

void Transaction::commit() {
  done_ = true;
  c_.in_transaction_ = false;  // whatever COMMIT answers, the transaction is over
  Result r = c_.checked(PQexec(c_.get(), "COMMIT"));
  // COMMIT of a transaction a failed statement aborted answers ROLLBACK, not an error.
  if (std::strcmp(PQcmdStatus(r.get()), "ROLLBACK") == 0) {
    throw Error("25P02", "the transaction was rolled back: a statement in it failed");
  }
}

Transaction::~Transaction() {
  if (done_) return;
  c_.in_transaction_ = false;
  if (PQstatus(c_.get()) != CONNECTION_OK) return;
  PQclear(PQexec(c_.get(), "ROLLBACK"));  // errors ignored: the connection may be failing
}

Pipeline::Pipeline(Connection& c) : c_(c) {
  c_.ensure();  // outside a transaction, a lost connection is made again first
  if (PQenterPipelineMode(c_.get()) != 1) throw error_of(c_.get(), nullptr);
  open_ = true;
}

Pipeline::~Pipeline() {
  if (!open_) return;
  // Left early (an exception): read what was sent, so the connection is usable again.
  if (queued_ > 0 && PQpipelineSync(c_.get()) == 1) {
    for (;;) {
      PGresult* r = PQgetResult(c_.get());
      if (!r) {
        if (PQstatus(c_.get()) != CONNECTION_OK) break;
        continue;
      }
      bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
      PQclear(r);
      if (sync) break;
    }
  }
  PQexitPipelineMode(c_.get());
}

void Pipeline::run(const std::string& name, const Params& params) {
  if (queued_ >= kMaxPipelined) {
    auto partial = read_back();
    for (auto& r : partial) held_.push_back(std::move(r));
  }
  auto p = params.pointers();
  if (PQsendQueryPrepared(c_.get(), name.c_str(), params.size(), p.data(), nullptr, nullptr, 0) !=
      1) {
    throw error_of(c_.get(), nullptr);
  }
  ++queued_;
}

std::vector<Result> Pipeline::read_back() {
  if (PQpipelineSync(c_.get()) != 1) throw error_of(c_.get(), nullptr);
  std::vector<Result> out;
  std::optional<Error> error;
  // Each statement's result, then a null that ends it; after the last, the sync's own result.
  for (int done = 0; done < queued_;) {
    PGresult* r = PQgetResult(c_.get());
    if (!r) {
      if (PQstatus(c_.get()) != CONNECTION_OK) throw error_of(c_.get(), nullptr);
      ++done;
      continue;
    }
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
      out.emplace_back(r);
    } else {
      if (!error) error = error_of(c_.get(), r);
      PQclear(r);
    }
  }
  PGresult* sync = PQgetResult(c_.get());
  bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
  PQclear(sync);
  queued_ = 0;
  if (error) throw *error;
  if (!synced) throw Error("", "the PostgreSQL pipeline lost its place");
  return out;
}

std::vector<Result> Pipeline::results() {
  std::vector<Result> out = std::move(held_);
  held_.clear();
  if (queued_ > 0) {
    for (auto& r : read_back()) out.push_back(std::move(r));
  }
  if (PQexitPipelineMode(c_.get()) != 1) throw error_of(c_.get(), nullptr);
  open_ = false;
  return out;
}

std::string libpq_message(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string copy_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace bulkmail::pg
