#include "web/unsubscribe_page.h"

#include <doctest/doctest.h>

#include <memory>
#include <thread>

#include "config/config.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {
const PageSender kSender{"Example <Telecom> & Sons", "100 Example Parkway, Cary, NC 27513"};
const UnsubscribePages& pages() {
  static const UnsubscribePages built(kSender, {"Updates <b>", "Updates"});
  return built;
}

std::shared_ptr<const Config> load(const TempDir& dir, const std::string& yaml) {
  auto l = load_config(write_config(dir, yaml));
  REQUIRE_MESSAGE(l.ok(), (l.ok() ? "" : l.errors[0].str()));
  return l.config;
}
}  // namespace

TEST_CASE("the confirmation page escapes every value and fills each address and token in") {
  std::string a = pages().confirm("j***@example.com", "Updates <b>", "TOKEN1", false);
  std::string b = pages().confirm("\"<x>\"***@example.com", "Updates <b>", "TOKEN2", false);
  CHECK(a.find("j***@example.com") != std::string::npos);
  CHECK(a.find("TOKEN1") != std::string::npos);
  CHECK(a.find("TOKEN2") == std::string::npos);
  CHECK(b.find("TOKEN2") != std::string::npos);
  CHECK(b.find("j***@example.com") == std::string::npos);  // nothing left from the page before
  CHECK(b.find("&quot;&lt;x&gt;&quot;***@example.com") != std::string::npos);
  CHECK(b.find("<x>") == std::string::npos);
  CHECK(a.find("Example &lt;Telecom&gt; &amp; Sons") != std::string::npos);
  CHECK(a.find("Updates &lt;b&gt;") != std::string::npos);
  CHECK(a.find('\x01') == std::string::npos);
  CHECK(a.find("<script") == std::string::npos);
  CHECK(a.find("action=\"TOKEN1\"") != std::string::npos);
}

TEST_CASE("the button order follows the link") {
  std::string category_first = pages().confirm("j***@example.com", "Updates", "T", false);
  std::string all_first = pages().confirm("j***@example.com", "Updates", "T", true);
  CHECK(category_first.find("value=\"category\"") < category_first.find("value=\"all\""));
  CHECK(all_first.find("value=\"all\"") < all_first.find("value=\"category\""));
}

TEST_CASE("the done page says what stopped and offers all mail after a category") {
  std::string category = pages().done("j***@example.com", "Updates", false, "T");
  std::string all = pages().done("j***@example.com", "Updates", true, "T");
  CHECK(category.find("No more mail of this kind (Updates)") != std::string::npos);
  CHECK(category.find("value=\"all\"") != std::string::npos);
  CHECK(category.find("action=\"T\"") != std::string::npos);
  CHECK(category.find("<strong>j***@example.com</strong>") != std::string::npos);
  CHECK(all.find("No more mail from Example &lt;Telecom&gt; &amp; Sons") != std::string::npos);
  CHECK(all.find("value=\"all\"") == std::string::npos);
  CHECK(all.find('\x01') == std::string::npos);
}

TEST_CASE("a category the pages were not built with renders the same page, only slower") {
  // A link of a category since removed from the config shows its name as the description.
  UnsubscribePages without(kSender, {});
  CHECK(without.confirm("j***@example.com", "Updates", "T", true) ==
        pages().confirm("j***@example.com", "Updates", "T", true));
  CHECK(without.done("j***@example.com", "Updates", false, "T") ==
        pages().done("j***@example.com", "Updates", false, "T"));
}

TEST_CASE("the invalid-link page says nothing about why") {
  std::string page = pages().invalid();
  CHECK(page.find("This link does not work") != std::string::npos);
  CHECK(page.find("Example &lt;Telecom&gt; &amp; Sons") != std::string::npos);
  CHECK(page.find("expired") == std::string::npos);
  CHECK(page.find("forged") == std::string::npos);
}

TEST_CASE("pages rebuilt for a reloaded config name the new organization") {
  TempDir dir;
  std::string yaml = valid_config_yaml();
  auto config = load(dir, yaml);
  auto held = std::make_unique<UnsubscribePages>(*config);        // as the webhook holds them
  const std::string description = "Updates about your services";  // customer-update's
  CHECK(held->confirm("j***@example.com", description, "T", false).find("Example Telecom, Inc.") !=
        std::string::npos);

  // The reload: the webhook builds the pages of the new config and drops the old ones.
  yaml.replace(yaml.find("Example Telecom, Inc."), 21, "Renamed Networks LLC");
  auto reloaded = load(dir, yaml);
  REQUIRE(reloaded->sender.organization == "Renamed Networks LLC");
  held = std::make_unique<UnsubscribePages>(*reloaded);
  for (const std::string& page :
       {held->confirm("j***@example.com", description, "T", false),
        held->confirm("j***@example.com", description, "T", true),
        held->done("j***@example.com", description, false, "T"),
        held->done("j***@example.com", description, true, "T"), held->invalid()}) {
    CHECK(page.find("Renamed Networks LLC") != std::string::npos);
    CHECK(page.find("Example Telecom") == std::string::npos);
  }
}

TEST_CASE("threads share one set of pages") {
  std::string here = pages().confirm("j***@example.com", "Updates", "T1", false);
  std::string there;
  std::thread([&] { there = pages().confirm("j***@example.com", "Updates", "T1", false); }).join();
  CHECK(there == here);
}

TEST_CASE("error pages escape their title and text and name no sender") {
  std::string page = error_page("Not <found>", "There is no page at \"this\" address.");
  CHECK(page.find("<title>Not &lt;found&gt;</title>") != std::string::npos);
  CHECK(page.find("<h1>Not &lt;found&gt;</h1>") != std::string::npos);
  CHECK(page.find("<p>There is no page at &quot;this&quot; address.</p>") != std::string::npos);
  CHECK(page.find("<footer>") == std::string::npos);
  CHECK(page.find('\x01') == std::string::npos);
  CHECK(error_page("Other", "text").find("<h1>Other</h1>") != std::string::npos);
}
