#include "config/config.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>

#include "base/text.h"
#include "crypto/dkim.h"
#include "crypto/verp_token.h"

namespace bulkmail {
namespace fs = std::filesystem;

namespace {

// Walks the YAML tree, converting values and collecting every problem with its place.
class Reader {
 public:
  Reader(std::string file, std::vector<ConfigError>& errors, std::vector<ConfigError>& warnings)
      : file_(std::move(file)), errors_(errors), warnings_(warnings) {}

  void error(const YAML::Node& at, const std::string& key, std::string message) {
    errors_.push_back(at_place(at, key, std::move(message)));
  }
  void warning(const YAML::Node& at, const std::string& key, std::string message) {
    warnings_.push_back(at_place(at, key, std::move(message)));
  }

  // Reports every key given twice in one mapping, at any depth. YAML keeps only the first, so the
  // settings under the second (say, a whole `sender:` block appended later) would silently be
  // ignored. An alias is walked as what it stands for, so a tree nested too deep, or holding
  // itself through an alias (`x: &a [*a]`), or repeating a part through aliases until it is huge,
  // is an error of its own, and the walk stops there.
  void check_duplicates(const YAML::Node& n, const std::string& prefix, int depth = 0) {
    if (walk_stopped_) return;
    if (depth > kMaxDepth || ++walked_ > kMaxValues) {
      walk_stopped_ = true;
      error(n, prefix,
            depth > kMaxDepth ? "is nested more than " + std::to_string(kMaxDepth) +
                                    " levels deep, or holds itself through an alias"
                              : "makes the config larger than " + std::to_string(kMaxValues) +
                                    " values (an alias counts as often as it is used)");
      return;
    }
    if (n.IsSequence()) {
      std::size_t i = 0;
      for (auto it = n.begin(); it != n.end(); ++it, ++i)
        check_duplicates(*it, prefix + "[" + std::to_string(i) + "]", depth + 1);
      return;
    }
    if (!n.IsMap()) return;
    std::map<std::string, int> first_line;  // each key of this mapping, and where it first stands
    for (auto it = n.begin(); it != n.end(); ++it) {
      YAML::Node k = it->first;  // a copy: the iterator hands out a temporary pair
      std::string key = join(prefix, k.Scalar());
      if (k.IsScalar()) {
        int line = k.Mark().line + 1;
        auto [first, fresh] = first_line.emplace(k.Scalar(), line);
        if (!fresh) {
          error(k, key,
                "is given twice, on lines " + std::to_string(first->second) + " and " +
                    std::to_string(line) + ": only the first would be used; keep one");
        }
      }
      check_duplicates(it->second, key, depth + 1);
    }
  }
  // Whether check_duplicates stopped at a tree too deep or too large: nothing else may walk it.
  bool walk_stopped() const { return walk_stopped_; }

  // Reports keys of `map` that are not in `allowed`: a typo must not silently become a default.
  void check_keys(const YAML::Node& map, const std::string& prefix, std::set<std::string> allowed) {
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string k = it->first.Scalar();
      if (!allowed.count(k)) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        error(it->first, join(prefix, k), "unknown key (expected one of: " + list + ")");
      }
    }
  }

  bool is_map(const YAML::Node& n, const std::string& key) {
    if (n.IsMap()) return true;
    error(n, key, "must be a mapping of keys to values");
    return false;
  }

  std::optional<std::string> string(const YAML::Node& parent, const std::string& prefix,
                                    const char* name, bool required) {
    std::string key = join(prefix, name);
    YAML::Node n = parent[name];
    if (!n || n.IsNull()) {
      if (required) error(parent, key, "is required");
      return std::nullopt;
    }
    if (!n.IsScalar()) {
      error(n, key, "must be a single value");
      return std::nullopt;
    }
    const std::string& v = n.Scalar();
    if (auto text = check_header_value(v); !text) {
      error(n, key, text.error().message);
      return std::nullopt;
    }
    if (trim(v).empty()) {
      error(n, key, required ? "is required and must not be empty" : "must not be empty");
      return std::nullopt;
    }
    return std::string(trim(v));
  }

  template <class T>
  std::optional<T> number(const YAML::Node& parent, const std::string& prefix, const char* name,
                          T min, T max) {
    std::string key = join(prefix, name);
    YAML::Node n = parent[name];
    if (!n || n.IsNull()) return std::nullopt;
    T v{};
    if (!n.IsScalar() || !YAML::convert<T>::decode(n, v) ||
        (std::is_floating_point_v<T> && !std::isfinite(static_cast<double>(v)))) {
      error(n, key, std::is_integral_v<T> ? "must be a whole number" : "must be a number");
      return std::nullopt;
    }
    if (v < min || v > max) {
      std::string range = std::is_integral_v<T>
                              ? std::to_string(static_cast<long long>(min)) + " to " +
                                    std::to_string(static_cast<long long>(max))
                              : trim_number(min) + " to " + trim_number(max);
      error(
          n, key,
          (v < 0 ? "must not be negative (allowed: " : "is out of range (allowed: ") + range + ")");
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> boolean(const YAML::Node& parent, const std::string& prefix,
                              const char* name) {
    YAML::Node n = parent[name];
    if (!n || n.IsNull()) return std::nullopt;
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
      error(n, join(prefix, name), "must be true or false");
      return std::nullopt;
    }
    return v;
  }

  static std::string join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : prefix + "." + name;
  }

 private:
  template <class T>
  static std::string trim_number(T v) {
    std::string s = std::to_string(v);
    if (s.find('.') != std::string::npos) {
      while (!s.empty() && s.back() == '0') s.pop_back();
      if (!s.empty() && s.back() == '.') s.pop_back();
    }
    return s;
  }

  ConfigError at_place(const YAML::Node& at, const std::string& key, std::string message) const {
    int line = 0, col = 0;
    if (at.IsDefined() && at.Mark().line >= 0) {
      line = at.Mark().line + 1;
      col = at.Mark().column + 1;
    }
    return {file_, line, col, key, std::move(message)};
  }

  std::string file_;
  std::vector<ConfigError>& errors_;
  std::vector<ConfigError>& warnings_;
  // No bulkmail setting is nested more than four levels deep, nor needs more than a few hundred
  // values: these bounds are for hostile or broken files only.
  static constexpr int kMaxDepth = 32;
  static constexpr std::size_t kMaxValues = 100'000;
  std::size_t walked_ = 0;
  bool walk_stopped_ = false;
};

}  // namespace

bool names_postgresql(std::string_view value) {
  // A URI, its scheme in any case (libpq takes it only in lower case: the check below then says
  // it cannot read it, rather than a SQLite file being made under that name), or libpq's
  // key=value words ("host=db.example.com dbname=bulkmail"). A SQLite path is neither.
  auto lower_starts = [&](std::string_view prefix) {
    if (value.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(value[i])) != prefix[i]) return false;
    }
    return true;
  };
  if (lower_starts("postgresql:") || lower_starts("postgres:")) return true;
  static const std::regex kKeyword(R"(^\s*[A-Za-z_]+\s*=)");
  return std::regex_search(value.begin(), value.end(), kKeyword);
}

namespace {

// The database a config file YAML cannot parse names, read from its top-level `database:` line
// (the default beside it when there is none), so that bulkmailctl can still tell whether a daemon
// runs on it. Empty when the file cannot be read.
DatabaseConfig database_in_text(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  static const std::regex kLine(R"(^database:[ \t]*(["']?)([^"'#]*?)\1[ \t]*(#.*)?\r?$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, kLine) && !m[2].str().empty()) {
      if (names_postgresql(m[2].str())) return {{}, m[2].str()};
      fs::path p = m[2].str();
      return {p.is_absolute() ? p : file.parent_path() / p, {}};
    }
  }
  if (in.bad()) return {};
  return {file.parent_path() / "bulkmail.db", {}};
}

}  // namespace

Result<void> check_postgresql_uri(const std::string& uri) {
  // The authority, [user[:password]@]host[:port][,host[:port]...], up to the first '/', '?' or
  // '#'. A password holding one of those ends it early, and libpq would read the rest as a host
  // and a port, then quote that "port" in its error: so a host's port must be digits.
  std::string_view rest = uri;
  std::size_t scheme = rest.find("://");
  // Key=value words have no authority: libpq's parse below reads them.
  rest = scheme == std::string_view::npos || uri.find('=') < scheme ? std::string_view()
                                                                    : rest.substr(scheme + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  std::size_t at = authority.rfind('@');
  bool password =
      at != std::string_view::npos && authority.substr(0, at).find(':') != std::string_view::npos;
  std::string_view hosts = at == std::string_view::npos ? authority : authority.substr(at + 1);
  bool bad_port = false;
  while (!hosts.empty()) {
    std::string_view host = hosts.substr(0, hosts.find(','));
    hosts.remove_prefix(std::min(hosts.size(), host.size() + 1));
    if (host.starts_with('[')) host.remove_prefix(std::min(host.size(), host.find(']') + 1));
    std::size_t colon = host.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view port = host.substr(colon + 1);
    bad_port |= port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos;
  }
  if (bad_port && !password) {
    return make_error(
        "the URI's host part is not host:port (a password with '/', '?' or '#' in it?): keep the "
        "password out of the config, in a libpq passfile");
  }
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(uri.c_str(), &parse_error);
  if (!options) {
    // libpq's message may quote the part it could not read: not repeated here.
    PQfreemem(parse_error);
    return make_error(
        "not a PostgreSQL connection string libpq can read "
        "(postgresql://user@host:port/dbname?sslmode=verify-full, the scheme in lower case, or "
        "key=value words)");
  }
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    // The password, and the passphrase of a client key: secrets, kept out of the config too.
    std::string_view key = o->keyword;
    if ((key == "password" || key == "sslpassword") && o->val && *o->val) password = true;
  }
  PQconninfoFree(options);
  if (password) {
    return make_error(
        "the URI holds a password: keep it out of the config, in a libpq passfile "
        "(?passfile=/etc/bulkmail/pgpass, mode 0600, or PGPASSFILE) or a service file");
  }
  return {};
}

namespace {

fs::path resolve(const fs::path& base, const std::string& p) {
  fs::path path(p);
  return path.is_absolute() ? path : (base / path).lexically_normal();
}

// Reads the non-empty, non-comment lines of a secret file, at least one. Errors never quote the
// contents.
Result<std::vector<std::string>> read_secret_lines(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return make_error("cannot read " + path.string() + ": " + std::strerror(errno));
  std::vector<std::string> lines;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    if (t.size() < 32) {
      return make_error(
          path.string() + " line " + std::to_string(n) +
          ": the secret is shorter than 32 characters (make one with `openssl rand -hex 32`)");
    }
    lines.emplace_back(t);
  }
  if (lines.empty()) {
    return make_error(path.string() + " holds no secret (make one with `openssl rand -hex 32`)");
  }
  return lines;
}

// A secret file must be closed to other local users: one its group or others can write is an
// error (anyone could plant a key of their own or point the API at a token they know), one others
// can read is a warning, as OpenSSH gives for private keys. Group read stays allowed: a root-owned
// file in the bulkmail group is a common way to hand the daemon its secrets.
// The shipped example's sender, untouched: every message would tell recipients it comes from
// Example Telecom at its sample address, which CAN-SPAM's "accurate header" and "valid physical
// postal address" rule out. A warning, since tests and demos use the example on purpose.
void check_example_values(Reader& r, const YAML::Node& root, const Config& c) {
  YAML::Node sender = root["sender"];
  if (!sender || !sender.IsMap()) return;
  auto example_domain = [](const std::string& d) {
    for (const char* e : {"example.com", "example.org", "example.net"}) {
      std::string suffix = std::string(".") + e;
      if (d == e || (d.size() > suffix.size() &&
                     d.compare(d.size() - suffix.size(), suffix.size(), suffix) == 0))
        return true;
    }
    return false;
  };
  if (c.sender.organization == "Example Telecom, Inc.")
    r.warning(sender["organization"], "sender.organization",
              "is still the example's: name your company");
  if (c.sender.postal_address == "100 Example Parkway, Cary, NC 27513, USA")
    r.warning(sender["postal_address"], "sender.postal_address",
              "is still the example's: CAN-SPAM requires your valid physical postal address");
  if (example_domain(c.sender.from.address.domain))
    r.warning(sender["from"], "sender.from",
              "uses a reserved example domain (" + c.sender.from.address.domain +
                  "): no recipient's provider will accept mail from it");
}

// Whether `sub` is `parent` or a domain below it ("a.example.com" is below "example.com",
// "xexample.com" is not).
bool same_or_subdomain(const std::string& sub, const std::string& parent) {
  return sub == parent || (sub.size() > parent.size() &&
                           sub.compare(sub.size() - parent.size(), parent.size(), parent) == 0 &&
                           sub[sub.size() - parent.size() - 1] == '.');
}

// DMARC's relaxed alignment, which Gmail and Yahoo require of bulk mail: the signing domain and the
// From domain share their organizational domain. Without the public suffix list, "one is the
// other or a subdomain of it" is what is checked: it never warns about an aligned pair that
// bulkmail's own examples use, and says so plainly when it may be wrong.
void check_dkim_alignment(Reader& r, const YAML::Node& root, const Config& c) {
  const std::string& d = c.dkim->domain;
  const std::string& from = c.sender.from.address.domain;
  if (d.empty() || from.empty()) return;
  if (same_or_subdomain(from, d) || same_or_subdomain(d, from)) return;
  r.warning(root["dkim"]["domain"], "dkim.domain",
            d + " is not aligned with the From domain " + from +
                ": Gmail and Yahoo require DMARC alignment of bulk mail (sign as " + from +
                " or a parent of it)");
}

// RFC 9477 has a mailbox provider honour a CFBL-Address whose domain is the From domain or below
// it, signed by the From domain (or a parent); any other domain needs a DKIM signature of its own,
// which bulkmail does not make. The return path's domain is the same one, so this also keeps it
// within the From domain's organization, as DMARC's SPF alignment wants.
void check_bounce_alignment(Reader& r, const YAML::Node& root, const Config& c) {
  const std::string& b = c.bounces.domain;
  const std::string& from = c.sender.from.address.domain;
  if (b.empty()) return;
  if (!c.dkim) {
    r.warning(
        root["bounces"]["domain"], "bounces.domain",
        "is set but dkim is not: the CFBL-Address goes out unsigned, and RFC 9477 has mailbox "
        "providers ignore it (configure dkim for the From domain)");
  }
  if (from.empty() || same_or_subdomain(b, from)) return;
  r.warning(root["bounces"]["domain"], "bounces.domain",
            b + " is not the From domain " + from +
                " or below it: RFC 9477 then wants a DKIM signature of its own domain too, which "
                "bulkmail does not make, so mailbox providers would ignore the CFBL-Address (use "
                "e.g. bounces." +
                from + ")");
}

void check_secret_mode(Reader& r, const YAML::Node& root, const char* section, const char* name,
                       const fs::path& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return;  // unreadable: reported already
  const YAML::Node s = root[section];
  const YAML::Node at = s.IsMap() ? s[name] : root;
  std::string key = std::string(section) + "." + name;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  std::string fix = "; run `chmod 600 " + path.string() + "`";
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    r.error(at, key,
            path.string() + " has mode " + mode + ": " +
                (st.st_mode & S_IWOTH ? "every local user" : "its group") +
                " can change the secret" + fix);
  } else if (st.st_mode & S_IROTH) {
    r.warning(at, key,
              path.string() + " has mode " + mode + ": every local user can read the secret" + fix);
  }
}

struct CurlUrlFree {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlStrFree {
  void operator()(char* p) const { curl_free(p); }
};

struct UrlParts {
  std::string scheme, host, path, query, fragment;
  bool has_port = false;
  bool has_userinfo = false;  // user[:password]@ before the host
};

std::optional<UrlParts> parse_url(const std::string& s) {
  std::unique_ptr<CURLU, CurlUrlFree> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, s.c_str(), 0) != CURLUE_OK) return std::nullopt;
  auto part = [&](CURLUPart p) {
    char* out = nullptr;
    if (curl_url_get(u.get(), p, &out, 0) != CURLUE_OK) return std::string();
    std::unique_ptr<char, CurlStrFree> g(out);
    return std::string(out);
  };
  UrlParts parts{part(CURLUPART_SCHEME),       part(CURLUPART_HOST),
                 part(CURLUPART_PATH),         part(CURLUPART_QUERY),
                 part(CURLUPART_FRAGMENT),     !part(CURLUPART_PORT).empty(),
                 !part(CURLUPART_USER).empty()};
  return parts;
}

bool is_loopback_host(std::string host) {
  if (host == "localhost") return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

fs::path base_of(const Config& c) { return c.file.parent_path(); }

bool is_category_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

void read_sender(Reader& r, const YAML::Node& root, Config& c) {
  YAML::Node n = root["sender"];
  if (!n) {
    r.error(root, "sender", "is required (organization, postal_address, from)");
    return;
  }
  if (!r.is_map(n, "sender")) return;
  r.check_keys(
      n, "sender",
      {"organization", "postal_address", "from", "reply_to", "return_path", "feedback_id"});
  if (auto v = r.string(n, "sender", "feedback_id", false)) {
    if (v->find_first_of(": ") != std::string::npos || v->size() > 64) {
      r.error(n["feedback_id"], "sender.feedback_id",
              "is at most 64 characters without ':' or spaces");
    } else {
      c.sender.feedback_id = *v;
    }
  }
  if (auto v = r.string(n, "sender", "organization", true)) c.sender.organization = *v;
  if (auto v = r.string(n, "sender", "postal_address", true)) {
    if (v->find_first_of("0123456789") == std::string::npos) {
      r.error(n["postal_address"], "sender.postal_address",
              "does not look like a postal address: CAN-SPAM needs a street address, a P.O. box "
              "or a registered private mailbox, and none has a number here");
    } else if (v->size() > 300) {
      r.error(n["postal_address"], "sender.postal_address", "is longer than 300 characters");
    } else {
      c.sender.postal_address = *v;
    }
  }
  bool from_ok = false;
  if (auto v = r.string(n, "sender", "from", true)) {
    auto m = parse_mailbox(*v);
    if (!m) {
      r.error(n["from"], "sender.from", "is not a valid address: " + m.error().message);
    } else {
      c.sender.from = std::move(m.value());
      from_ok = true;
    }
  }
  if (auto v = r.string(n, "sender", "reply_to", false)) {
    auto a = parse_address(*v);
    if (!a) {
      r.error(n["reply_to"], "sender.reply_to", "is not a valid address: " + a.error().message);
    } else {
      c.sender.reply_to = std::move(a.value());
    }
  }
  if (auto v = r.string(n, "sender", "return_path", false)) {
    auto a = parse_address(*v);
    if (!a) {
      r.error(n["return_path"], "sender.return_path",
              "is not a valid address: " + a.error().message);
    } else {
      c.sender.return_path = std::move(a.value());
    }
  } else if (from_ok) {
    c.sender.return_path = c.sender.from.address;
  }
}

void read_smtp(Reader& r, const YAML::Node& root, Config& c) {
  YAML::Node n = root["smtp"];
  if (!n) {
    r.error(root, "smtp", "is required (url of the relay)");
    return;
  }
  if (!r.is_map(n, "smtp")) return;
  r.check_keys(n, "smtp",
               {"url", "max_connections", "tls", "username", "password_file", "helo", "ca_file",
                "connect_timeout_seconds", "message_timeout_seconds"});
  if (auto v = r.string(n, "smtp", "url", true)) {
    auto u = parse_url(*v);
    if (!u || (u->scheme != "smtp" && u->scheme != "smtps") || u->host.empty()) {
      r.error(n["url"], "smtp.url", "must be smtp://host[:port] or smtps://host[:port]");
    } else if (!u->query.empty() || !u->fragment.empty()) {
      r.error(n["url"], "smtp.url", "must not have a query or fragment");
    } else {
      c.smtp.url = *v;
      c.smtp.host = u->host;
      c.smtp.tls = is_loopback_host(u->host) ? SmtpConfig::Tls::none : SmtpConfig::Tls::required;
    }
  }
  if (auto v = r.number<int>(n, "smtp", "max_connections", 1, 500)) c.smtp.max_connections = *v;
  if (auto v = r.string(n, "smtp", "tls", false)) {
    if (*v == "required") {
      c.smtp.tls = SmtpConfig::Tls::required;
    } else if (*v == "opportunistic") {
      c.smtp.tls = SmtpConfig::Tls::opportunistic;
    } else if (*v == "none") {
      c.smtp.tls = SmtpConfig::Tls::none;
    } else {
      r.error(n["tls"], "smtp.tls", "must be required, opportunistic or none");
    }
  }
  if (auto v = r.string(n, "smtp", "username", false)) c.smtp.username = *v;
  if (auto v = r.string(n, "smtp", "password_file", false)) {
    c.smtp.password_file = resolve(base_of(c), *v);
    std::ifstream in(c.smtp.password_file);
    std::string line;
    if (!in || !std::getline(in, line) || trim(line).empty()) {
      r.error(n["password_file"], "smtp.password_file",
              "cannot read a password from " + c.smtp.password_file.string());
    } else {
      c.smtp.password = std::string(trim(line));
    }
  }
  if (!c.smtp.username.empty() && c.smtp.password.empty()) {
    r.error(n["username"], "smtp.username", "needs smtp.password_file");
  }
  if (auto v = r.string(n, "smtp", "ca_file", false)) {
    c.smtp.ca_file = resolve(base_of(c), *v);
    std::ifstream in(c.smtp.ca_file);
    if (!in) r.error(n["ca_file"], "smtp.ca_file", "cannot read " + c.smtp.ca_file.string());
  }
  if (auto v = r.string(n, "smtp", "helo", false)) {
    auto helo = parse_domain(*v);
    if (!helo) {
      r.error(n["helo"], "smtp.helo", "is not a valid host name: " + helo.error().message);
    } else {
      c.smtp.helo = std::move(helo.value());
    }
  }
  if (auto v = r.number<int>(n, "smtp", "connect_timeout_seconds", 1, 600))
    c.smtp.connect_timeout_seconds = *v;
  if (auto v = r.number<int>(n, "smtp", "message_timeout_seconds", 1, 3600))
    c.smtp.message_timeout_seconds = *v;
}

void read_throttle(Reader& r, const YAML::Node& root, Config& c) {
  YAML::Node n = root["throttle"];
  if (!n) return;
  if (!r.is_map(n, "throttle")) return;
  r.check_keys(n, "throttle", {"messages_per_second", "burst", "daily_limit", "domains"});
  if (auto v = r.number<double>(n, "throttle", "messages_per_second", 0.001, 1e6)) {
    c.throttle.messages_per_second = *v;
  }
  if (auto v = r.number<double>(n, "throttle", "burst", 0, 1e6)) c.throttle.burst = *v;
  if (auto v = r.number<std::int64_t>(n, "throttle", "daily_limit", 0, std::int64_t{1} << 40)) {
    c.throttle.daily_limit = *v;
  }
  YAML::Node d = n["domains"];
  if (!d || d.IsNull() || !r.is_map(d, "throttle.domains")) return;
  for (auto it = d.begin(); it != d.end(); ++it) {
    std::string name = it->first.Scalar();
    std::string key = "throttle.domains." + name;
    auto domain = parse_domain(name);
    if (!domain) {
      r.error(it->first, key, "is not a valid domain: " + domain.error().message);
      continue;
    }
    YAML::Node dn = it->second;  // a handle: the iterator's pair is a temporary
    if (!r.is_map(dn, key)) continue;
    r.check_keys(dn, key, {"messages_per_second", "max_connections"});
    DomainThrottleConfig dc;
    if (auto v = r.number<double>(dn, key, "messages_per_second", 0.001, 1e6))
      dc.messages_per_second = *v;
    if (auto v = r.number<int>(dn, key, "max_connections", 1, 500)) dc.max_connections = *v;
    c.throttle.domains[*domain] = dc;
  }
}

void read_retry(Reader& r, const YAML::Node& root, Config& c) {
  YAML::Node n = root["retry"];
  if (!n) return;
  if (!r.is_map(n, "retry")) return;
  r.check_keys(
      n, "retry",
      {"initial_delay_seconds", "max_delay_seconds", "max_attempts", "expire_after_hours"});
  if (auto v = r.number<int>(n, "retry", "initial_delay_seconds", 1, 86400))
    c.retry.initial_delay_seconds = *v;
  if (auto v = r.number<int>(n, "retry", "max_delay_seconds", 1, 7 * 86400))
    c.retry.max_delay_seconds = *v;
  if (auto v = r.number<int>(n, "retry", "max_attempts", 1, 1000)) c.retry.max_attempts = *v;
  if (auto v = r.number<int>(n, "retry", "expire_after_hours", 1, 24 * 30))
    c.retry.expire_after_hours = *v;
  if (c.retry.max_delay_seconds < c.retry.initial_delay_seconds) {
    r.error(n, "retry.max_delay_seconds", "must not be less than retry.initial_delay_seconds");
  }
}

void read_daemon(Reader& r, const YAML::Node& root, Config& c) {
  YAML::Node n = root["daemon"];
  if (!n) return;
  if (!r.is_map(n, "daemon")) return;
  r.check_keys(n, "daemon", {"lease_seconds", "shutdown_grace_seconds", "claim_batch"});
  if (auto v = r.number<int>(n, "daemon", "lease_seconds", 30, 86400)) c.daemon.lease_seconds = *v;
  if (auto v = r.number<int>(n, "daemon", "shutdown_grace_seconds", 1, 3600))
    c.daemon.shutdown_grace_seconds = *v;
  if (auto v = r.number<int>(n, "daemon", "claim_batch", 1, 10000)) c.daemon.claim_batch = *v;
}

void read_retention(Reader& r, const YAML::Node& root, Config& c) {
  YAML::Node n = root["retention"];
  if (!n) return;
  if (!r.is_map(n, "retention")) return;
  r.check_keys(n, "retention", {"message_days", "event_days"});
  if (auto v = r.number<int>(n, "retention", "message_days", 0, 36500))
    c.retention.message_days = *v;
  if (auto v = r.number<int>(n, "retention", "event_days", 0, 36500)) c.retention.event_days = *v;
}

void read_unsubscribe(Reader& r, const YAML::Node& root, const fs::path& base, Config& c) {
  YAML::Node n = root["unsubscribe"];
  if (!n) {
    r.error(root, "unsubscribe", "is required (url, secret_file): every message needs an opt-out");
    return;
  }
  if (!r.is_map(n, "unsubscribe")) return;
  r.check_keys(n, "unsubscribe", {"url", "secret_file", "mailto", "token_expiry_days"});
  if (auto v = r.string(n, "unsubscribe", "url", true)) {
    auto u = parse_url(*v);
    if (!u || (u->scheme != "https" && u->scheme != "http") || u->host.empty()) {
      r.error(n["url"], "unsubscribe.url", "must be an https:// URL");
    } else if (u->scheme == "http" && !is_loopback_host(u->host)) {
      r.error(n["url"], "unsubscribe.url",
              "must use https: mailbox providers require it for one-click unsubscribe (plain "
              "http is allowed only for a loopback host)");
    } else if (!u->query.empty() || !u->fragment.empty()) {
      r.error(n["url"], "unsubscribe.url",
              "must not have a query or fragment (tokens are appended as a path)");
    } else if (u->has_userinfo) {
      // "https://mail.example.com@other.example/" reads as one host and goes to another.
      r.error(n["url"], "unsubscribe.url",
              "must not name a user before the host (user@host): every recipient sees this link");
    } else {
      std::string url = *v;
      while (!url.empty() && url.back() == '/') url.pop_back();
      c.unsubscribe.url = url;
      c.unsubscribe.path = u->path;
      while (!c.unsubscribe.path.empty() && c.unsubscribe.path.back() == '/')
        c.unsubscribe.path.pop_back();
    }
  }
  if (auto v = r.string(n, "unsubscribe", "secret_file", true)) {
    c.unsubscribe.secret_file = resolve(base, *v);
    if (auto keys = read_secret_lines(c.unsubscribe.secret_file)) {
      c.unsubscribe.keys = std::move(*keys);
    } else {
      r.error(n["secret_file"], "unsubscribe.secret_file", keys.error().message);
    }
  }
  if (auto v = r.string(n, "unsubscribe", "mailto", false)) {
    auto a = parse_address(*v);
    if (!a) {
      r.error(n["mailto"], "unsubscribe.mailto", "is not a valid address: " + a.error().message);
    } else {
      c.unsubscribe.mailto = std::move(a.value());
    }
  }
  if (auto v = r.number<int>(n, "unsubscribe", "token_expiry_days", 0, 36500)) {
    if (*v != 0 && *v < 30) {
      r.error(n["token_expiry_days"], "unsubscribe.token_expiry_days",
              "must be 0 (never) or at least 30: CAN-SPAM requires the opt-out to work for 30 "
              "days after sending");
    } else {
      c.unsubscribe.token_expiry_days = *v;
    }
  }
}

void read_webhook(Reader& r, const YAML::Node& root, const fs::path& base, Config& c) {
  YAML::Node n = root["webhook"];
  if (!n) return;
  if (!r.is_map(n, "webhook")) return;
  r.check_keys(n, "webhook",
               {"listen", "api_token_file", "max_connections", "max_connections_per_client",
                "loopback_reserve"});
  if (auto v = r.number<int>(n, "webhook", "max_connections", 1, 100000))
    c.webhook.max_connections = *v;
  if (auto v = r.number<int>(n, "webhook", "max_connections_per_client", 1, 100000))
    c.webhook.max_connections_per_client = *v;
  if (auto v = r.number<int>(n, "webhook", "loopback_reserve", 0, 1000))
    c.webhook.loopback_reserve = *v;
  if (auto v = r.string(n, "webhook", "listen", false)) {
    auto colon = v->rfind(':');
    std::string host = colon == std::string::npos ? "" : v->substr(0, colon);
    std::string port = colon == std::string::npos ? "" : v->substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    in_addr v4{};
    in6_addr v6{};
    char* end = nullptr;
    long p = port.empty() ? 0 : std::strtol(port.c_str(), &end, 10);
    bool addr_ok =
        inet_pton(AF_INET, host.c_str(), &v4) == 1 || inet_pton(AF_INET6, host.c_str(), &v6) == 1;
    if (!addr_ok || p < 1 || p > 65535 || (end && *end)) {
      r.error(n["listen"], "webhook.listen", "must be IP:PORT, e.g. 127.0.0.1:8025 or [::1]:8025");
    } else {
      c.webhook.listen_host = host;
      c.webhook.listen_port = static_cast<std::uint16_t>(p);
    }
  }
  if (auto v = r.string(n, "webhook", "api_token_file", false)) {
    c.webhook.api_token_file = resolve(base, *v);
    if (auto lines = read_secret_lines(c.webhook.api_token_file)) {
      c.webhook.api_token = lines->front();
    } else {
      r.error(n["api_token_file"], "webhook.api_token_file", lines.error().message);
    }
  }
}

// "0.3%" -> 3000 parts per million: a percentage from 0% to 100% with at most four decimals.
std::optional<std::int64_t> percent_ppm(const std::string& text) {
  if (text.size() < 2 || text.back() != '%') return std::nullopt;
  std::string_view digits(text.data(), text.size() - 1);
  std::int64_t whole = 0, fraction = 0;
  int decimals = -1;  // -1: no '.' yet
  for (char ch : digits) {
    if (ch == '.' && decimals < 0) {
      decimals = 0;
    } else if (ch >= '0' && ch <= '9') {
      if (decimals < 0) {
        if (whole > 100) return std::nullopt;
        whole = whole * 10 + (ch - '0');
      } else if (++decimals > 4) {
        return std::nullopt;
      } else {
        fraction = fraction * 10 + (ch - '0');
      }
    } else {
      return std::nullopt;
    }
  }
  if (digits.front() == '.' || decimals == 0) return std::nullopt;
  for (int d = std::max(decimals, 0); d < 4; ++d) fraction *= 10;
  std::int64_t ppm = whole * 10'000 + fraction;
  if (ppm > 1'000'000) return std::nullopt;
  return ppm;
}

void read_bounce_rate(Reader& r, const YAML::Node& n, const char* key, std::int64_t& out) {
  std::string name = std::string("bounces.") + key;
  if (!n[key]) return;
  auto v = r.string(n, "bounces", key, false);
  if (!v) return;
  if (auto ppm = percent_ppm(*v)) {
    out = *ppm;
  } else {
    r.error(n[key], name,
            "must be a percentage from 0% to 100% with at most four decimals, e.g. 0.3% (0% "
            "turns it off), not '" +
                *v + "'");
  }
}

void read_bounces(Reader& r, const YAML::Node& root, Config& c) {
  YAML::Node n = root["bounces"];
  if (!n || n.IsNull()) return;
  if (!r.is_map(n, "bounces")) return;
  r.check_keys(n, "bounces",
               {"domain", "soft_limit", "soft_window_days", "min_sample", "pause_complaint_rate",
                "pause_bounce_rate", "pause_block_rate"});
  if (auto v = r.number<int>(n, "bounces", "soft_limit", 1, 1000)) c.bounces.soft_limit = *v;
  if (auto v = r.number<int>(n, "bounces", "soft_window_days", 1, 3650))
    c.bounces.soft_window_days = *v;
  if (auto v = r.number<std::int64_t>(n, "bounces", "min_sample", 1, std::int64_t{1} << 40))
    c.bounces.min_sample = *v;
  read_bounce_rate(r, n, "pause_complaint_rate", c.bounces.pause_complaint_ppm);
  read_bounce_rate(r, n, "pause_bounce_rate", c.bounces.pause_bounce_ppm);
  read_bounce_rate(r, n, "pause_block_rate", c.bounces.pause_block_ppm);
  if (auto v = r.string(n, "bounces", "domain", false)) {
    auto d = parse_domain(*v);
    if (!d) {
      r.error(n["domain"], "bounces.domain", "is not a valid domain: " + d.error().message);
    } else if (VerpCodec::kMaxLocalPartLength + 1 + d->size() > 254) {
      r.error(n["domain"], "bounces.domain",
              "is too long: a return path b-<token>@<domain> must fit in 254 octets (at most " +
                  std::to_string(253 - VerpCodec::kMaxLocalPartLength) + " for the domain)");
    } else {
      c.bounces.domain = std::move(d.value());
    }
  }
}

void read_dkim(Reader& r, const YAML::Node& root, const fs::path& base, Config& c) {
  YAML::Node n = root["dkim"];
  if (!n || n.IsNull()) return;
  if (!r.is_map(n, "dkim")) return;
  r.check_keys(n, "dkim", {"domain", "selector", "key_file"});
  DkimConfig d;
  auto domain = r.string(n, "dkim", "domain", true);
  auto selector = r.string(n, "dkim", "selector", true);
  auto key = r.string(n, "dkim", "key_file", true);
  if (!domain || !selector || !key) return;
  auto signing = parse_domain(*domain);
  if (!signing) {
    r.error(n["domain"], "dkim.domain", "is not a valid domain: " + signing.error().message);
    return;
  }
  d.domain = std::move(signing.value());
  d.selector = *selector;
  d.key_file = resolve(base, *key);
  std::ifstream in(d.key_file);
  if (!in) {
    r.error(n["key_file"], "dkim.key_file",
            "cannot read " + d.key_file.string() + ": " + std::strerror(errno));
    return;
  }
  auto loaded = DkimKey::from_pem_file(d.key_file.string());
  if (!loaded) {
    r.error(n["key_file"], "dkim.key_file", d.key_file.string() + ": " + loaded.error().message);
    return;
  }
  d.key = std::make_shared<const DkimKey>(std::move(loaded.value()));
  c.dkim = d;
}

void read_categories(Reader& r, const YAML::Node& root, Config& c) {
  YAML::Node n = root["categories"];
  if (!n || n.IsNull() || (n.IsMap() && n.size() == 0)) {
    r.error(n ? n : root, "categories", "is required: at least one category of mail");
    return;
  }
  if (!r.is_map(n, "categories")) return;
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string name = it->first.Scalar();
    std::string key = "categories." + name;
    if (!is_category_name(name)) {
      r.error(it->first, key, "a category name is 1-64 lower-case letters, digits and hyphens");
      continue;
    }
    YAML::Node cat = it->second;  // a handle: the iterator's pair is a temporary
    if (!r.is_map(cat, key)) continue;
    r.check_keys(cat, key, {"template", "description"});
    CategoryConfig cc;
    cc.name = name;
    auto tmpl = r.string(cat, key, "template", true);
    auto desc = r.string(cat, key, "description", true);
    if (tmpl) {
      if (tmpl->find('/') != std::string::npos || *tmpl == "." || *tmpl == "..") {
        r.error(cat["template"], key + ".template",
                "is a folder name under `templates`, not a path");
        continue;
      }
      fs::path dir = c.templates / *tmpl;
      std::error_code ec;
      if (!fs::is_directory(dir, ec)) {
        r.error(cat["template"], key + ".template", "no template folder " + dir.string());
        continue;
      }
      cc.template_name = *tmpl;
    }
    if (desc) cc.description = *desc;
    if (tmpl && desc) c.categories.emplace(name, std::move(cc));
  }
}

// `database:`: a postgresql:// URI (checked as check_postgresql_uri says), or a SQLite path
// relative to the config's folder; bulkmail.db beside it when absent.
void read_database(Reader& r, const YAML::Node& root, const fs::path& base, Config& c) {
  std::string database = r.string(root, "", "database", false).value_or("bulkmail.db");
  if (!names_postgresql(database)) {
    c.database.sqlite = resolve(base, database);
  } else if (auto ok = check_postgresql_uri(database); !ok) {
    r.error(root["database"], "database", ok.error().message);
  } else {
    c.database.postgresql = database;
  }
}

void read_logging(Reader& r, const YAML::Node& root, Config& c) {
  YAML::Node n = root["logging"];
  if (!n) return;
  if (!r.is_map(n, "logging")) return;
  r.check_keys(n, "logging", {"level", "mask_addresses"});
  if (auto v = r.string(n, "logging", "level", false)) {
    using L = LogLevel;
    static const std::map<std::string, L> levels = {
        {"debug", L::debug}, {"info", L::info}, {"warning", L::warning}, {"error", L::error}};
    auto it = levels.find(*v);
    if (it == levels.end()) {
      r.error(n["level"], "logging.level", "must be debug, info, warning or error");
    } else {
      c.logging.level = it->second;
    }
  }
  if (auto v = r.boolean(n, "logging", "mask_addresses")) c.logging.mask_addresses = *v;
}

}  // namespace

std::string ConfigError::str() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!key.empty()) s += key + ": ";
  // A key or a value quoted from the file is the file's bytes: never a terminal escape.
  return printable_line(s + message);
}

ConfigLoad load_config(const fs::path& path) {
  ConfigLoad out;
  std::error_code ec;
  fs::path file = fs::absolute(path, ec);
  if (ec) file = path;
  std::string name = path.string();
  Reader r(name, out.errors, out.warnings);

  if (fs::is_directory(file, ec)) {
    out.errors.push_back({name, 0, 0, "", "cannot read the config file: it is a folder"});
    return out;
  }
  std::ifstream in(file);
  if (!in) {
    out.errors.push_back(
        {name, 0, 0, "", std::string("cannot read the config file: ") + std::strerror(errno)});
    return out;
  }
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::ParserException& e) {
    out.errors.push_back(
        {name, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax error: " + e.msg});
    out.database = database_in_text(file);
    return out;
  } catch (const std::ios_base::failure& e) {  // the file opened but reading it failed
    out.errors.push_back({name, 0, 0, "", "cannot read the config file: " + e.code().message()});
    return out;
  }
  if (!root.IsMap()) {
    out.errors.push_back({name, 0, 0, "", "the config must be a YAML mapping of keys to values"});
    return out;
  }

  auto c = std::make_shared<Config>();
  c->file = file;
  fs::path base = file.parent_path();
  r.check_duplicates(root, "");
  if (r.walk_stopped()) {  // the error says why: reading such a tree is not safe
    out.database = database_in_text(file);
    return out;
  }
  r.check_keys(root, "",
               {"database", "templates", "sender", "smtp", "throttle", "unsubscribe", "webhook",
                "bounces", "dkim", "categories", "logging", "retry", "daemon", "retention"});
  read_database(r, root, base, *c);
  if (auto t = r.string(root, "", "templates", true)) {
    c->templates = resolve(base, *t);
    if (!fs::is_directory(c->templates, ec)) {
      r.error(root["templates"], "templates", "no such folder: " + c->templates.string());
    }
  }
  read_sender(r, root, *c);
  read_smtp(r, root, *c);
  read_throttle(r, root, *c);
  read_retry(r, root, *c);
  read_daemon(r, root, *c);
  read_retention(r, root, *c);
  read_unsubscribe(r, root, base, *c);
  read_webhook(r, root, base, *c);
  read_bounces(r, root, *c);
  read_dkim(r, root, base, *c);
  read_categories(r, root, *c);
  read_logging(r, root, *c);
  check_secret_mode(r, root, "unsubscribe", "secret_file", c->unsubscribe.secret_file);
  check_secret_mode(r, root, "webhook", "api_token_file", c->webhook.api_token_file);
  check_secret_mode(r, root, "smtp", "password_file", c->smtp.password_file);
  if (c->dkim) check_secret_mode(r, root, "dkim", "key_file", c->dkim->key_file);
  if (c->dkim) check_dkim_alignment(r, root, *c);
  check_bounce_alignment(r, root, *c);
  check_example_values(r, root, *c);
  out.database = c->database;
  if (out.errors.empty()) out.config = std::move(c);
  return out;
}

fs::path default_config_path() {
  if (const char* env = std::getenv("BULKMAIL_CONFIG"); env && *env) return env;
  return "/etc/bulkmail/bulkmail.yaml";
}

}  // namespace bulkmail
