#include "compose/composer.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <set>
#include <thread>

#include "crypto/unsubscribe_token.h"
#include "crypto/verp_token.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

const Vars kUpdateVars = {{"first_name", "Jane"},
                          {"headline", "Your fiber speed is doubling"},
                          {"body", "From December 1 your plan moves to 1 Gbps."}};

struct Fixture {
  TempDir dir;
  std::shared_ptr<const Config> config;
  std::unique_ptr<Composer> composer;
  ComposeScratch scratch;  // a sender's, kept from one message to the next
  explicit Fixture(std::string yaml = valid_config_yaml()) {
    auto load = load_config(write_config(dir, yaml));
    REQUIRE_MESSAGE(load.ok(), (load.ok() ? "" : load.errors[0].str()));
    config = load.config;
    auto c = Composer::create(config);
    REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
    composer = std::move(c.value());
  }
  Result<ComposedMessage> compose(Vars vars = kUpdateVars, std::string category = "customer-update",
                                  UnixMillis now = 1'795'000'000'000) {
    return composer->compose({category, "jane@example.com", std::move(vars), "nov-2026", 42, now},
                             scratch);
  }
};

std::string header(const std::string& msg, const std::string& name) {
  auto pos = msg.find("\r\n" + name + ": ");
  if (pos == std::string::npos) return "";
  pos += 4 + name.size();
  auto end = msg.find("\r\n", pos);
  while (msg[end + 2] == ' ' || msg[end + 2] == '\t') end = msg.find("\r\n", end + 2);
  return msg.substr(pos, end - pos);
}

}  // namespace

TEST_CASE("a composed message carries every compliance header") {
  Fixture f;
  auto m = f.compose();
  REQUIRE_MESSAGE(m.ok(), m.error().message);
  const std::string& d = "\r\n" + m->data;
  CHECK(m->data.rfind("From: Example Telecom <updates@mail.example.com>\r\n", 0) == 0);
  CHECK(header(d, "To") == "jane@example.com");
  CHECK(header(d, "Reply-To") == "support@example.com");
  CHECK(header(d, "Subject") == "Your fiber speed is doubling");
  CHECK(header(d, "Date") == "Wed, 18 Nov 2026 11:06:40 +0000");
  CHECK(header(d, "Message-ID") == m->message_id);
  CHECK(m->message_id.find("<42.") == 0);
  CHECK(m->message_id.find("@mail.example.com>") != std::string::npos);
  CHECK(header(d, "MIME-Version") == "1.0");
  CHECK(header(d, "List-Unsubscribe") == "<" + m->unsubscribe_url + ">");
  CHECK(header(d, "List-Unsubscribe-Post") == "List-Unsubscribe=One-Click");
  CHECK(header(d, "List-Id") == "Updates about your services <customer-update.mail.example.com>");
  CHECK(header(d, "Feedback-ID").empty());
  CHECK(header(d, "Content-Type").find("multipart/alternative; boundary=") == 0);
  CHECK(m->unsubscribe_url.rfind("https://mail.example.com/unsubscribe/", 0) == 0);
  // Without bounces.domain: no VERP, no CFBL-Address.
  CHECK(m->envelope_from == "updates@mail.example.com");
  CHECK(m->envelope_from == f.config->sender.return_path.str());
  CHECK(header(d, "CFBL-Address").empty());
}

TEST_CASE("the unsubscribe link's token names the recipient and category") {
  Fixture f;
  auto m = f.compose();
  REQUIRE(m.ok());
  TokenCodec codec(f.config->unsubscribe.keys, 0);
  auto token = m->unsubscribe_url.substr(m->unsubscribe_url.rfind('/') + 1);
  auto check = codec.verify(token, 1'795'000'000'000);
  REQUIRE(check.status == TokenStatus::valid);
  CHECK(check.claims.address == "jane@example.com");
  CHECK(check.claims.category == "customer-update");
  CHECK(m->data.find("jane@example.com") ==
        m->data.find("To: jane@example.com") + 4);  // only in To
}

TEST_CASE("the footer: both parts carry the link and the postal address - lines stay short") {
  Fixture f;
  auto m = f.compose();
  REQUIRE(m.ok());
  // Decoded views of the two parts are checked by the Python email test; here the raw rules.
  std::size_t start = 0;
  while (start < m->data.size()) {
    auto e = m->data.find("\r\n", start);
    REQUIRE(e != std::string::npos);  // every line ends in CRLF
    CHECK(e - start <= 998);
    start = e + 2;
  }
  CHECK(m->data.find("100 Example Parkway") != std::string::npos);
  CHECK(m->data.find("Stop all email from Example Telecom, Inc.") != std::string::npos);
  CHECK(m->data.find("</div>\r\n</body>") != std::string::npos);  // html footer inside the body
}

TEST_CASE("a missing variable fails the message with its name - built-ins cannot be overridden") {
  Fixture f;
  auto m = f.compose({{"first_name", "Jane"}, {"headline", "x"}});
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().message == "template customer-update: variable 'body' is missing (used in text)");
  Vars evil = kUpdateVars;
  evil["postal_address"] = "Nowhere";
  CHECK(f.compose(evil).error().message.find("filled in by bulkmail") != std::string::npos);
}

TEST_CASE("header injection through a variable reaching the subject is refused") {
  Fixture f;
  Vars v = kUpdateVars;
  v["headline"] = "Hello\r\nBcc: victim@example.org";
  auto m = f.compose(v);
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().message ==
        "variable 'headline' holds a line break, and the subject of template customer-update uses "
        "it: a mail header is one line");
}

TEST_CASE("non-ASCII names and subjects are encoded - Feedback-ID when configured") {
  std::string yaml = valid_config_yaml();
  yaml.replace(yaml.find("\"Example Telecom <"), 18, "\"Télécom Exemple <");
  yaml.replace(yaml.find("  reply_to:"), 0, "  feedback_id: exampletel\n");
  Fixture f(yaml);
  Vars v = kUpdateVars;
  v["headline"] = "Votre débit double — sans frais";
  auto m = f.compose(v);
  REQUIRE_MESSAGE(m.ok(), m.error().message);
  CHECK(m->data.rfind("From: =?UTF-8?B?", 0) == 0);
  CHECK(header("\r\n" + m->data, "Subject").find("=?UTF-8?B?") == 0);
  CHECK(header("\r\n" + m->data, "Feedback-ID") == "nov-2026:customer-update:exampletel");
}

TEST_CASE("a template whose own link sits in a section that does not render is refused") {
  TempDir tdir;
  tdir.write("custom/subject", "Hello\n");
  tdir.write("custom/text", "{{#show}}{{unsubscribe_url}} {{postal_address}}{{/show}}\n");
  tdir.write("custom/html", "<p>{{#show}}{{unsubscribe_url}} {{postal_address}}{{/show}}</p>\n");
  std::string yaml = valid_config_yaml();
  yaml.replace(yaml.find("templates: "),
               yaml.find('\n', yaml.find("templates: ")) - yaml.find("templates: "),
               "templates: " + tdir.path().string());
  yaml = yaml.substr(0, yaml.find("categories:")) +
         "categories:\n  customer-update: { template: custom, description: x }\n";
  Fixture f(yaml);
  auto shown = f.compose({{"show", "yes"}});
  CHECK_MESSAGE(shown.ok(), (shown.ok() ? "" : shown.error().message));
  CHECK(shown->data.find("You are receiving this email") == std::string::npos);  // no footer added
  auto hidden = f.compose({});
  REQUIRE_FALSE(hidden.ok());
  CHECK(hidden.error().message ==
        "template custom: the text part lacks the unsubscribe link or postal address");

  // The text part places both itself; only the HTML part hides them.
  tdir.write("custom/text", "{{unsubscribe_url}} {{postal_address}}\n");
  Fixture html_only(yaml);
  CHECK(html_only.compose({{"show", "yes"}}).ok());
  auto html_hidden = html_only.compose({});
  REQUIRE_FALSE(html_hidden.ok());
  CHECK(html_hidden.error().message ==
        "template custom: the html part lacks the unsubscribe link or postal address");
}

TEST_CASE("Message-IDs are unique: the same message composed again, on two threads") {
  Fixture f;
  auto second = Composer::create(f.config);  // two composers, as two daemons would have
  REQUIRE(second.ok());
  std::vector<std::string> a, b;
  auto run = [&](Composer& c, std::vector<std::string>& ids) {
    ComposeScratch scratch;  // and its own scratch
    for (int i = 0; i < 2000; ++i) {
      auto m = c.compose(
          {"customer-update", "jane@example.com", kUpdateVars, "nov-2026", 42, 1'795'000'000'000},
          scratch);
      REQUIRE(m.ok());
      ids.push_back(m->message_id);
    }
  };
  std::thread other([&] { run(**second, b); });
  run(*f.composer, a);
  other.join();
  std::set<std::string> all(a.begin(), a.end());
  all.insert(b.begin(), b.end());
  CHECK(all.size() == 4000);
  CHECK(a.front().size() == std::string("<42.@mail.example.com>").size() + 24);
}

TEST_CASE("a scratch outlives its composer: a rebuilt composer goes on with fresh Dates and IDs") {
  // A sender keeps its scratch across reloads, which rebuild the composer: the Date it caches
  // follows each message's time, and the Message-IDs carry on from the same generator.
  Fixture f;
  auto first = f.compose(kUpdateVars, "customer-update", 1'795'000'000'000);
  REQUIRE(first.ok());
  auto rebuilt = Composer::create(f.config);
  REQUIRE(rebuilt.ok());
  f.composer = std::move(rebuilt.value());
  auto same_second = f.compose(kUpdateVars, "customer-update", 1'795'000'000'999);
  auto next_second = f.compose(kUpdateVars, "customer-update", 1'795'000'001'000);
  REQUIRE(same_second.ok());
  REQUIRE(next_second.ok());
  CHECK(header("\r\n" + first->data, "Date") == "Wed, 18 Nov 2026 11:06:40 +0000");
  CHECK(header("\r\n" + same_second->data, "Date") == "Wed, 18 Nov 2026 11:06:40 +0000");
  CHECK(header("\r\n" + next_second->data, "Date") == "Wed, 18 Nov 2026 11:06:41 +0000");
  std::set<std::string> ids = {first->message_id, same_second->message_id, next_second->message_id};
  CHECK(ids.size() == 3);
}

namespace {
// The valid config with one category, customer-update (described as `description`), whose
// template is the folder `custom` in `tdir`.
std::string custom_template_yaml(const TempDir& tdir, const std::string& description,
                                 std::string yaml = valid_config_yaml()) {
  auto at = yaml.find("templates: ");
  yaml.replace(at, yaml.find('\n', at) - at, "templates: " + tdir.path().string());
  return yaml.substr(0, yaml.find("categories:")) +
         "categories:\n  customer-update: { template: custom, description: \"" + description +
         "\" }\n";
}

// The message with its quoted-printable undone (soft breaks gone, =XX the byte) and CRLF as LF:
// enough to read the parts of a message whose headers hold no "=XX".
std::string decode_qp(const std::string& data) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  std::string out;
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (data.compare(i, 3, "=\r\n") == 0) {
      i += 2;
    } else if (data[i] == '=' && i + 2 < data.size() && hex(data[i + 1]) && hex(data[i + 2])) {
      out += static_cast<char>(std::stoi(data.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else if (data.compare(i, 2, "\r\n") == 0) {
      out += '\n';
      ++i;
    } else {
      out += data[i];
    }
  }
  return out;
}
}  // namespace

TEST_CASE("each built-in variable fills the template with its own value") {
  TempDir tdir;
  tdir.write("custom/subject", "Hello\n");
  tdir.write("custom/text",
             "U {{unsubscribe_url}}\nA {{unsubscribe_all_url}}\nP {{postal_address}}\n"
             "O {{organization}}\nR {{recipient}}\nC {{category_description}}\n");
  tdir.write("custom/html", "<p>{{unsubscribe_url}} {{postal_address}}</p>\n");
  Fixture f(custom_template_yaml(tdir, "Plan news"));
  auto m = f.compose({});
  REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message));
  std::string text = decode_qp(m->data);
  CHECK(text.find("\nU " + m->unsubscribe_url + "\n") != std::string::npos);
  CHECK(text.find("\nA " + m->unsubscribe_url + "?scope=all\n") != std::string::npos);
  CHECK(text.find("\nP 100 Example Parkway, Cary, NC 27513, USA\n") != std::string::npos);
  CHECK(text.find("\nO Example Telecom, Inc.\n") != std::string::npos);
  CHECK(text.find("\nR jane@example.com\n") != std::string::npos);
  CHECK(text.find("\nC Plan news\n") != std::string::npos);
}

TEST_CASE("a message variable naming any built-in is refused") {
  Fixture f;
  for (std::string_view builtin : kBuiltinVars) {
    std::string name(builtin);
    CAPTURE(name);
    Vars v = kUpdateVars;
    v[name] = "x";
    auto m = f.compose(v);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().message ==
          "variable '" + name + "' is filled in by bulkmail and cannot be set");
  }
}

TEST_CASE("html escaping: the template's and the compliance check's agree, footer or not") {
  // kainjow escapes & < > " and ': a postal address holding each must be found, escaped, in the
  // html part whether the template or the footer puts it there.
  std::string yaml = valid_config_yaml();
  auto at = yaml.find("  postal_address: ");
  yaml.replace(at, yaml.find('\n', at) - at,
               "  postal_address: \"1 <Main> & \\\"Quoted\\\" 'Street'\"");
  const std::string escaped = "1 &lt;Main&gt; &amp; &quot;Quoted&quot; &apos;Street&apos;";
  TempDir tdir;
  tdir.write("custom/subject", "Hello\n");
  tdir.write("custom/text", "{{unsubscribe_url}} {{postal_address}}\n");
  tdir.write("custom/html", "<p>{{unsubscribe_url}} {{postal_address}}</p>\n");
  for (bool footer : {false, true}) {
    CAPTURE(footer);
    Fixture f(footer ? yaml : custom_template_yaml(tdir, "Plan news", yaml));
    REQUIRE(f.config->sender.postal_address == "1 <Main> & \"Quoted\" 'Street'");
    auto m = footer ? f.compose() : f.compose({});
    REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message));
    std::string html = decode_qp(m->data);
    html = html.substr(html.find("Content-Type: text/html"));
    CHECK(html.find(escaped) != std::string::npos);
    CHECK((html.find("You are receiving this email") != std::string::npos) == footer);
  }
}

TEST_CASE("a clone composes as its original, without reading the templates again") {
  TempDir dir;
  std::filesystem::copy(source_dir() + "/templates", dir.path() / "templates",
                        std::filesystem::copy_options::recursive);
  std::string yaml = valid_config_yaml();
  std::string from = "templates: " + source_dir() + "/templates";
  yaml.replace(yaml.find(from), from.size(), "templates: " + (dir.path() / "templates").string());
  Fixture f(yaml);
  // The templates the original read are gone.
  std::filesystem::remove_all(dir.path() / "templates");
  auto clone = f.composer->clone();
  ComposeScratch scratch;
  auto a = f.compose();
  auto b = clone->compose(
      {"customer-update", "jane@example.com", kUpdateVars, "nov-2026", 42, 1'795'000'000'000},
      scratch);
  REQUIRE(a.ok());
  REQUIRE_MESSAGE(b.ok(), b.error().message);
  std::string da = "\r\n" + a->data, db = "\r\n" + b->data;
  CHECK(header(db, "Subject") == header(da, "Subject"));
  CHECK(header(db, "List-Unsubscribe") == header(da, "List-Unsubscribe"));
  CHECK(b->message_id != a->message_id);  // a scratch of its own: its own Message-IDs
  // The body parts are the same text (the MIME boundary aside).
  auto body = [](const std::string& m) {
    auto at = m.find("Your fiber speed is doubling", m.find("\r\n\r\n"));
    return at == std::string::npos ? std::string() : m.substr(at, 200);
  };
  CHECK_FALSE(body(a->data).empty());
  CHECK(body(b->data) == body(a->data));
}

namespace {
const std::string kBounces = "bounces:\n  domain: bounces.mail.example.com\n";
}  // namespace

TEST_CASE(
    "with bounces.domain each message's envelope sender names it, and CFBL-Address is added") {
  std::string yaml = valid_config_yaml() + kBounces;
  yaml.replace(yaml.find("  reply_to:"), 0,
               "  feedback_id: exampletel\n  return_path: bounces@mail.example.com\n");
  Fixture f(yaml);
  auto m = f.compose();
  REQUIRE_MESSAGE(m.ok(), m.error().message);
  VerpCodec codec(f.config->unsubscribe.keys);
  CHECK(m->envelope_from == verp_address(codec, 42, "bounces.mail.example.com"));
  auto at = m->envelope_from.find('@');
  REQUIRE(at != std::string::npos);
  CHECK(m->envelope_from.substr(at) == "@bounces.mail.example.com");
  CHECK(codec.verify(m->envelope_from.substr(0, at)) == 42);
  const std::string d = "\r\n" + m->data;
  CHECK(header(d, "CFBL-Address") == "fbl@bounces.mail.example.com; report=arf");
  CHECK(header(d, "Feedback-ID") == "nov-2026:customer-update:exampletel");  // as it was
  // The return path is the envelope's, in no header (the receiving server adds Return-Path).
  CHECK(d.find(m->envelope_from.substr(0, at)) == std::string::npos);
  CHECK(header(d, "Return-Path").empty());

  // Another message, another return path. A clone composes the same one for the same message.
  auto other = f.composer->compose(
      {"customer-update", "jane@example.com", kUpdateVars, "nov-2026", 43, 1'795'000'000'000},
      f.scratch);
  REQUIRE(other.ok());
  CHECK(other->envelope_from == verp_address(codec, 43, "bounces.mail.example.com"));
  ComposeScratch scratch;
  auto cloned = f.composer->clone()->compose(
      {"customer-update", "jane@example.com", kUpdateVars, "nov-2026", 42, 1'795'000'000'000},
      scratch);
  REQUIRE(cloned.ok());
  CHECK(cloned->envelope_from == m->envelope_from);
}

TEST_CASE("DKIM signs CFBL-Address, as RFC 9477 requires") {
  TempDir dir;
  auto path = write_config(dir, valid_config_yaml() + kBounces + dkim_config_block(dir));
  auto load = load_config(path);
  REQUIRE_MESSAGE(load.ok(), load.errors.at(0).str());
  auto composer = Composer::create(load.config);
  REQUIRE(composer.ok());
  ComposeScratch scratch;
  auto m = (*composer)->compose(
      {"customer-update", "jane@example.com", kUpdateVars, "", 7, 1'795'000'000'000}, scratch);
  REQUIRE_MESSAGE(m.ok(), m.error().message);
  REQUIRE(m->data.rfind("DKIM-Signature: ", 0) == 0);
  std::string sig = header("\r\n" + m->data, "DKIM-Signature");
  std::string tags;
  for (char c : sig)
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') tags += c;
  auto h = tags.find(";h=");
  REQUIRE(h != std::string::npos);
  std::string names = ":" + tags.substr(h + 3, tags.find(';', h + 3) - h - 3) + ":";
  CAPTURE(names);
  // Present, and signed once more, so that no second CFBL-Address can be added in transit.
  auto first = names.find(":CFBL-Address:");
  REQUIRE(first != std::string::npos);
  CHECK(names.find(":CFBL-Address:", first + 1) != std::string::npos);
  CHECK(header("\r\n" + m->data, "CFBL-Address") == "fbl@bounces.mail.example.com; report=arf");
}
