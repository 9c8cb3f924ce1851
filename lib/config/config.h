// The configuration: one YAML file (config/bulkmail.yaml documents every key), parsed once into
// these plain structs, validated with every problem reported at once, then frozen behind a
// shared_ptr<const Config>. Relative paths resolve against the config file's own folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/log.h"

namespace bulkmail {

class DkimKey;  // dkim.h: loaded from dkim.key_file; OpenSSL stays out of this header

struct SenderConfig {
  std::string organization;    // required: who sends, named in every footer
  std::string postal_address;  // required: CAN-SPAM's valid physical postal address
  Mailbox from;                // required
  std::optional<Address> reply_to;
  Address return_path;      // envelope sender unless bounces.domain is set; default: From
  std::string feedback_id;  // optional sender id for Feedback-ID: <campaign>:<category>:<id>
};

struct SmtpConfig {
  enum class Tls { required, opportunistic, none };
  std::string url;           // smtp://host:port (STARTTLS) or smtps://host:port
  std::string host;          // from url
  int max_connections = 20;  // sender threads, one reused SMTP connection each
  // STARTTLS policy: required unless the host is loopback, where the default is none.
  Tls tls = Tls::required;
  std::string username;                 // AUTH user; empty: no AUTH
  std::filesystem::path password_file;  // AUTH password, first line; never logged
  std::string password;                 // loaded from password_file
  std::string helo;                     // EHLO name; default: the From domain
  std::filesystem::path ca_file;        // PEM CA bundle to verify the relay; empty: the system's
  int connect_timeout_seconds = 10;     // TCP connect and greeting
  int message_timeout_seconds = 120;    // one whole transaction, MAIL FROM to the reply to DATA
};

struct DomainThrottleConfig {
  double messages_per_second = 0;  // 0: only the global rate applies
  int max_connections = 0;         // 0: no limit beyond smtp.max_connections
};

struct ThrottleConfig {
  double messages_per_second = 100;  // global rate across every connection
  double burst = 0;              // extra messages allowed at once; 0: a tenth of a second's worth
  std::int64_t daily_limit = 0;  // messages sent per UTC day; 0: no limit
  std::map<std::string, DomainThrottleConfig> domains;  // by recipient domain (A-label form)
};

struct RetryConfig {
  int initial_delay_seconds = 60;  // the first retry waits this long (with jitter), then doubles
  int max_delay_seconds = 3600;    // the wait never grows past this
  int max_attempts = 10;           // attempts, the first one included, before a message fails
  int expire_after_hours = 72;     // a message queued longer than this fails instead of retrying
};

struct DaemonConfig {
  int lease_seconds = 300;          // a claimed message returns to the queue if its sender dies
  int shutdown_grace_seconds = 30;  // SIGTERM: how long in-flight deliveries may still finish
  int claim_batch = 500;            // messages claimed per transaction at most
};

// How long personal data is kept. Suppressions and their evidence are kept for good: they are
// what stops mail to a person who opted out.
struct RetentionConfig {
  int message_days = 90;  // finished messages (and their variables) go after this; 0: kept
  int event_days = 365;   // events that are no suppression's evidence go after this; 0: kept
};

struct UnsubscribeConfig {
  std::string url;                    // public base URL; links are <url>/<token>
  std::string path;                   // url's path without a final '/': where the webhook answers
  std::filesystem::path secret_file;  // HMAC keys, one per line: the first signs, all verify
  std::vector<std::string> keys;      // loaded from secret_file; never logged
  std::optional<Address> mailto;      // optional mailto: opt-out address for List-Unsubscribe
  int token_expiry_days = 0;          // 0: links never expire; otherwise at least 30 (CAN-SPAM)
};

struct WebhookConfig {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8025;
  std::filesystem::path api_token_file;  // empty: the /api/v1 routes are off
  std::string api_token;                 // loaded from api_token_file; never logged
  int max_connections = 512;             // open HTTP connections at most; more get 503
  // Open connections from one client address (an IPv6 client: its /64) at most; more get 503.
  // Low enough that one client cannot take the whole budget; behind a reverse proxy every
  // connection comes from the proxy, so there it should be max_connections.
  int max_connections_per_client = 64;
  // Connections loopback clients (127.0.0.0/8, ::1) may open past both caps, so that a local
  // health check answers when the budget is spent, a local reverse proxy's share included.
  int loopback_reserve = 8;
};

// Reports that come back by mail: bounces and complaints.
struct BouncesConfig {
  // The domain of VERP return paths, e.g. bounces.mail.example.com; empty (the default): off.
  // With it each message's envelope sender is b-<token>@<domain>, the token naming the message
  // (crypto/verp_token.h), and every message carries "CFBL-Address: fbl@<domain>; report=arf"
  // (RFC 9477), so that a late bounce or a complaint names the message it is about. The cost:
  // bounces stop reaching sender.return_path's mailbox, so the domain needs an MX that hands all
  // its mail to bulkmail (and SPF for the relay) first. Without it the envelope sender is
  // sender.return_path, the same for every message.
  std::string domain;
  // Soft bounces (mailbox full, over quota, delays) to one address that suppress it, when this many
  // come within soft_window_days with no delivery to it between them. Default 3 in 30 days.
  int soft_limit = 3;
  int soft_window_days = 30;
  // A campaign pauses itself once at least min_sample of its messages were answered (sent,
  // bounced, complained, failed) and one of its rates reaches its threshold, written in the file
  // as a percentage ("0.3%") and kept in parts per million; "0%" turns that one off.
  std::int64_t min_sample = 500;
  std::int64_t pause_complaint_ppm = 3'000;  // 0.3%: Gmail's line for bulk senders
  std::int64_t pause_bounce_ppm = 50'000;    // 5% hard bounces
  std::int64_t pause_block_ppm = 50'000;     // 5% policy and reputation refusals
};

struct DkimConfig {
  std::string domain;
  std::string selector;
  std::filesystem::path key_file;      // RSA (2048 bits or more) or Ed25519, PEM
  std::shared_ptr<const DkimKey> key;  // loaded and checked from key_file
};

struct CategoryConfig {
  std::string name;           // e.g. "customer-update": the key under `categories`
  std::string template_name;  // folder under `templates`
  std::string description;    // shown to recipients: why they get this mail
};

// The `logging` block: the level, and whether logs mask addresses.
using LoggingConfig = LogSettings;

// Where the queue lives: a SQLite file (the embedded default: bulkmail.db beside the config), or,
// for several daemons on several machines, a PostgreSQL database (`database: postgresql://...` or
// `postgres://...`, a libpq connection URI).
struct DatabaseConfig {
  std::filesystem::path sqlite;  // the file; empty for PostgreSQL
  // The libpq connection URI; empty for SQLite. It holds no password (the config refuses one:
  // libpq's passfile, PGPASSFILE or a service file give it), so it may be shown and logged.
  std::string postgresql;

  bool is_postgresql() const { return !postgresql.empty(); }
  bool empty() const { return sqlite.empty() && postgresql.empty(); }
  // The file, or the URI: for messages.
  std::string str() const { return is_postgresql() ? postgresql : sqlite.string(); }
  bool operator==(const DatabaseConfig&) const = default;
};

// Whether a `database:` value names a PostgreSQL database (a postgresql:// or postgres:// URI).
bool names_postgresql(std::string_view value);

// A PostgreSQL URI as bulkmail takes one: libpq can read it, and it holds no password (libpq's
// passfile, PGPASSFILE or a service file gives that). The error never quotes the URI.
Result<void> check_postgresql_uri(const std::string& uri);

struct Config {
  std::filesystem::path file;  // the config file itself, absolute
  DatabaseConfig database;
  std::filesystem::path templates;  // folder of per-category template folders
  SenderConfig sender;
  SmtpConfig smtp;
  ThrottleConfig throttle;
  RetryConfig retry;
  DaemonConfig daemon;
  RetentionConfig retention;
  UnsubscribeConfig unsubscribe;
  WebhookConfig webhook;
  BouncesConfig bounces;
  std::optional<DkimConfig> dkim;
  std::map<std::string, CategoryConfig> categories;
  LoggingConfig logging;

  const CategoryConfig* category(const std::string& name) const {
    auto it = categories.find(name);
    return it == categories.end() ? nullptr : &it->second;
  }
};

// One problem with the config: "bulkmail.yaml:12:5: sender.postal_address: is required".
struct ConfigError {
  std::string file;
  int line = 0;     // 1-based; 0 when the problem has no place in the file
  int column = 0;   // 1-based
  std::string key;  // dotted path, e.g. "throttle.messages_per_second"
  std::string message;
  // The line an operator reads: control characters the file held (in a key, a quoted value)
  // shown as '?', so that no config can send their terminal an escape.
  std::string str() const;
};

struct ConfigLoad {
  std::shared_ptr<const Config> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
  // Problems that do not stop bulkmail but that an operator must hear of (a secret file every
  // local user can read): the daemon prints them at start, on reload and for --check.
  std::vector<ConfigError> warnings;
  // The database the file names, resolved, even when other keys are wrong (empty when the file
  // could not be read as YAML): bulkmailctl uses it to tell a daemon still running on an older
  // version of the file.
  DatabaseConfig database;
  bool ok() const { return errors.empty(); }
};

// Reads, parses and validates the config at `path`. Never throws for a bad config. Besides each
// key's own rules: a key given twice at any level is an error (YAML would silently keep one), and
// a secret file (unsubscribe.secret_file, webhook.api_token_file, smtp.password_file,
// dkim.key_file) that its group or other users can write is an error, one other users can read a
// warning.
ConfigLoad load_config(const std::filesystem::path& path);

// The config path a program uses when none is given: $BULKMAIL_CONFIG, then
// /etc/bulkmail/bulkmail.yaml.
std::filesystem::path default_config_path();

}  // namespace bulkmail
