#include "compose/message_template.h"

#include <doctest/doctest.h>
#include <kainjow/mustache.hpp>

#include "base/text.h"
#include "temp_dir.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {
std::filesystem::path make_template(const TempDir& dir, const std::string& subject,
                                    const std::string& text, const std::string& html) {
  dir.write("t/subject", subject);
  dir.write("t/text", text);
  dir.write("t/html", html);
  return dir / "t";
}
}  // namespace

TEST_CASE("rendering: values escaped in html only - sections work") {
  TempDir dir;
  auto t = MessageTemplate::load(make_template(
      dir, "Hi {{name}}\n", "Dear {{name}}{{#vip}}, valued{{/vip}}\n", "<p>{{name}}</p>"));
  REQUIRE(t.ok());
  auto r = (*t)->render({{"name", "Tom & <Jerry>"}, {"vip", "yes"}});
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->subject == "Hi Tom & <Jerry>");
  CHECK(r->text == "Dear Tom & <Jerry>, valued\n");
  CHECK(r->html == "<p>Tom &amp; &lt;Jerry&gt;</p>");
  auto no_vip = (*t)->render({{"name", "Tom"}});
  REQUIRE(no_vip.ok());  // a missing section name is false, not an error
  CHECK(no_vip->text == "Dear Tom\n");
}

TEST_CASE("built-in values fill the template and win over a variable of the same name") {
  TempDir dir;
  auto t = MessageTemplate::load(
      make_template(dir, "For {{organization}}\n", "{{name}} at {{postal_address}}\n", "<p></p>"));
  REQUIRE(t.ok());
  auto r = (*t)->render({{"name", "Ada"}, {"postal_address", "Nowhere"}},
                        {{"organization", "Example Fiber"}, {"postal_address", "1 Main St"}});
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->subject == "For Example Fiber");
  CHECK(r->text == "Ada at 1 Main St\n");
}

TEST_CASE("a missing variable is an error naming it") {
  TempDir dir;
  auto t = MessageTemplate::load(make_template(dir, "Hi\n", "Plan: {{plan}}\n", "<p></p>"));
  REQUIRE(t.ok());
  auto r = (*t)->render({});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "template t: variable 'plan' is missing (used in text)");
}

TEST_CASE("the subject renders to one non-empty line") {
  TempDir dir;
  // Two lines in the template itself are refused when it is loaded (bulkmaild --check).
  auto t = MessageTemplate::load(make_template(dir, "{{a}}\n{{b}}\n", "x", "x"));
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().message.find("spans more than one line") != std::string::npos);
  auto empty = MessageTemplate::load(make_template(dir, "{{a}}\n", "x", "x"));
  CHECK((*empty)->render({{"a", ""}}).error().message.find("renders empty") != std::string::npos);
}

TEST_CASE("templates that could slip past the rules are refused at load") {
  struct Case {
    const char* subject;
    const char* text;
    const char* html;
    const char* reason;
  };
  const Case cases[] = {
      {"s", "t", "<p>{{{name}}}</p>", "unescaped tag for 'name'"},
      {"s", "t", "<p>{{& name}}</p>", "unescaped tag for 'name'"},
      {"s", "{{=<% %>=}}", "h", "changing delimiters"},
      {"s", "{{> footer}}", "h", "partials"},
      {"s", "{{#open}} never closed", "h", "text: Unclosed section"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.reason);
    TempDir dir;
    auto t = MessageTemplate::load(make_template(dir, c.subject, c.text, c.html));
    REQUIRE_FALSE(t.ok());
    CHECK_MESSAGE(t.error().message.find(c.reason) != std::string::npos, t.error().message);
  }
  TempDir dir;
  dir.write("t/subject", "s");
  CHECK(MessageTemplate::load(dir / "t").error().message.find("text: cannot read") !=
        std::string::npos);
}

TEST_CASE("a template that places the link and the address itself gets no footer") {
  TempDir dir;
  auto t = MessageTemplate::load(
      make_template(dir, "s", "{{postal_address}} {{unsubscribe_url}}", "<p>{{organization}}</p>"));
  REQUIRE(t.ok());
  CHECK((*t)->text_places_compliance());
  CHECK_FALSE((*t)->html_places_compliance());
}

TEST_CASE("the shipped templates load") {
  for (const char* name : {"customer-update", "research-invitation"}) {
    CAPTURE(name);
    auto t = MessageTemplate::load(source_dir() + "/templates/" + name);
    CHECK_MESSAGE(t.ok(), (t.ok() ? "" : t.error().message));
  }
}

TEST_CASE(
    "a value with paragraphs keeps its lines: as they are in text, as <br> in html, escaped") {
  TempDir dir;
  auto t = MessageTemplate::load(
      make_template(dir, "News: {{headline}}\n", "{{body}}\n", "<p>{{body}}</p>"));
  REQUIRE(t.ok());
  std::string body =
      "Your plan changes on 1 May.\r\n\r\nPrices <stay> the same & so do\nyour minutes.";
  auto r = (*t)->render({{"headline", "Plans"}, {"body", body}});
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->text == body + "\n");
  CHECK(r->html ==
        "<p>Your plan changes on 1 May.<br>\n<br>\nPrices &lt;stay&gt; the same &amp; so do<br>\n"
        "your minutes.</p>");
  // The same value in the subject, a header, is refused with its name.
  auto in_subject = (*t)->render({{"headline", "Plans\nBcc: x@evil.example"}, {"body", "x"}});
  REQUIRE_FALSE(in_subject.ok());
  CHECK(in_subject.error().message.find("variable 'headline' holds a line break") == 0);
}

TEST_CASE("a subject template that spans lines is refused when loaded, whatever the values") {
  TempDir dir;
  auto two = MessageTemplate::load(
      make_template(dir, "News\n{{#vip}}for you{{/vip}}\n", "x\n", "<p>x</p>"));
  REQUIRE_FALSE(two.ok());
  CHECK(two.error().message.find("the subject template spans more than one line") !=
        std::string::npos);
  // One line with its final newline is fine.
  TempDir other;
  CHECK(MessageTemplate::load(
            make_template(other, "News {{#vip}}for you{{/vip}}\n", "x\n", "<p>x</p>"))
            .ok());
}

TEST_CASE("html values are escaped by kainjow's own html_escape, as the composer escapes its own") {
  // The composer looks for html_escape(postal address) in the rendered html part: the template's
  // escaping and html_escape must agree on every character, & < > " and ' above all.
  std::string every;  // every byte but NUL and LF (which the html part turns into <br>)
  for (int c = 1; c < 256; ++c) {
    if (c != '\n') every += static_cast<char>(c);
  }
  const std::string kainjow_escaped = kainjow::mustache::html_escape<std::string>(every);
  CHECK(html_escape(every) == kainjow_escaped);
  CHECK(html_escape("&<>\"'") == "&amp;&lt;&gt;&quot;&apos;");
  CHECK(kainjow_escaped.size() == every.size() - 5 + 5 + 4 + 4 + 6 + 6);  // those five alone
  TempDir dir;
  auto t = MessageTemplate::load(make_template(dir, "s\n", "{{v}}", "<p>{{v}}</p>"));
  REQUIRE(t.ok());
  auto r = (*t)->render({{"v", every}});
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r->html == "<p>" + kainjow_escaped + "</p>");
  CHECK(r->text == every);  // text parts are never escaped
}
