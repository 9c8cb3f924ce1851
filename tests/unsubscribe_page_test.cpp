#include "web/unsubscribe_page.h"

#include <doctest/doctest.h>

using namespace bulkmail;

namespace {
const PageSender kSender{"Example <Telecom> & Sons", "100 Example Parkway, Cary, NC 27513"};
}

TEST_CASE("the confirmation page escapes every value and fills each address and token in") {
  std::string a =
      unsubscribe_confirm_page(kSender, "j***@example.com", "Updates <b>", "TOKEN1", false);
  std::string b =
      unsubscribe_confirm_page(kSender, "\"<x>\"***@example.com", "Updates <b>", "TOKEN2", false);
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
  std::string category_first =
      unsubscribe_confirm_page(kSender, "j***@example.com", "Updates", "T", false);
  std::string all_first =
      unsubscribe_confirm_page(kSender, "j***@example.com", "Updates", "T", true);
  CHECK(category_first.find("value=\"category\"") < category_first.find("value=\"all\""));
  CHECK(all_first.find("value=\"all\"") < all_first.find("value=\"category\""));
}

TEST_CASE("the done page says what stopped and offers all mail after a category") {
  std::string category = unsubscribe_done_page(kSender, "j***@example.com", "Updates", false, "T");
  std::string all = unsubscribe_done_page(kSender, "j***@example.com", "Updates", true, "T");
  CHECK(category.find("No more mail of this kind (Updates)") != std::string::npos);
  CHECK(category.find("value=\"all\"") != std::string::npos);
  CHECK(all.find("No more mail from Example &lt;Telecom&gt; &amp; Sons") != std::string::npos);
  CHECK(all.find("value=\"all\"") == std::string::npos);
}

TEST_CASE("the invalid-link page says nothing about why") {
  std::string page = unsubscribe_invalid_page(kSender);
  CHECK(page.find("This link does not work") != std::string::npos);
  CHECK(page.find("expired") == std::string::npos);
  CHECK(page.find("forged") == std::string::npos);
}
