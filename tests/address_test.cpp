#include "base/address.h"

#include <doctest/doctest.h>

using namespace bulkmail;

TEST_CASE("valid addresses normalize to one spelling") {
  struct Case {
    const char* input;
    const char* normalized;
  };
  const Case cases[] = {
      {"jane@example.com", "jane@example.com"},
      {"  Jane.Doe@Example.COM ", "jane.doe@example.com"},
      {"o'brien+news@mail.example.co.uk", "o'brien+news@mail.example.co.uk"},
      {"user@bücher.example", "user@xn--bcher-kva.example"},
      {"user@XN--BCHER-KVA.example", "user@xn--bcher-kva.example"},
      {"\"john smith\"@example.com", "\"john smith\"@example.com"},
      {"a@b-c.example", "a@b-c.example"},
      {"x@例え.テスト", "x@xn--r8jz45g.xn--zckzah"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input);
    auto a = parse_address(c.input);
    REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.error().message));
    CHECK(a->str() == c.normalized);
  }
}

TEST_CASE("invalid addresses are refused with a reason") {
  struct Case {
    std::string input;
    const char* reason;  // a fragment of the expected message
  };
  const Case cases[] = {
      {"", "empty"},
      {"plainaddress", "no '@'"},
      {"a@@example.com", "more than one '@'"},
      {"@example.com", "before '@' is empty"},
      {"jane@", "domain after '@' is empty"},
      {".jane@example.com", "starts or ends with a dot"},
      {"ja..ne@example.com", "two dots in a row"},
      {"ja ne@example.com", "not allowed unquoted"},
      {std::string(65, 'a') + "@example.com", "longer than 64"},
      {"jane@localhost", "no dot"},
      {"jane@example..com", "empty label"},
      {"jane@-example.com", "hyphen"},
      {"jane@exa_mple.com", "other than a letter"},
      {"jane@example.123", "all digits"},
      {"jane@[192.0.2.1]", "address literals"},
      {"jane@" + std::string(64, 'a') + ".com", "longer than 63"},
      {"jäne@example.com", "SMTPUTF8"},
      {"jane@example.com\r\nBcc: x@evil.example", "line break"},
      {"jane@exa\nmple.com", "line break"},
      {std::string("jane\0@example.com", 17), "control character"},
      {"jane@exam\xff"
       "ple.com",
       "UTF-8"},
      {"jane@example.com.", "ends with a dot"},
      {"\"unclosed@example.com", "not closed"},
      {"\"a\"b\"@example.com", "the quoted part before '@' has an unescaped quote"},
      {"\"ab\\\"@example.com", "the quoted part before '@' ends in a backslash"},
      {"\"a\tb\"@example.com", "the quoted part before '@' has a control character"},
      {"a@" + std::string(60, 'b') + "." + std::string(60, 'c') + "." + std::string(60, 'd') + "." +
           std::string(60, 'e') + "." + std::string(60, 'f') + ".com",
       "longer than 253"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.input);
    auto a = parse_address(c.input);
    REQUIRE_FALSE(a.ok());
    CHECK_MESSAGE(a.error().message.find(c.reason) != std::string::npos, a.error().message);
  }
}

TEST_CASE("a domain on its own is checked and normalized as after an '@'") {
  struct Case {
    const char* input;
    const char* ascii;
  };
  for (Case c :
       {Case{"mail.example.com", "mail.example.com"}, Case{"Mail.Example.COM", "mail.example.com"},
        Case{"bücher.example", "xn--bcher-kva.example"},
        Case{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
        Case{"b-c.example", "b-c.example"}}) {
    CAPTURE(c.input);
    auto d = parse_domain(c.input);
    REQUIRE_MESSAGE(d.ok(), (d.ok() ? "" : d.error().message));
    CHECK(*d == c.ascii);
  }
  struct Bad {
    std::string input;
    const char* error;
  };
  const Bad bad[] = {
      {"", "the domain after '@' is empty"},
      {"localhost", "the domain has no dot: a public mail domain needs one"},
      {"example..com", "the domain has an empty label (two dots in a row?)"},
      {"-example.com", "domain label '-example' starts or ends with a hyphen"},
      {"bad_domain.example",
       "domain label 'bad_domain' has a character other than a letter, digit or hyphen"},
      {"a@example.com",
       "domain label 'a@example' has a character other than a letter, digit or hyphen"},
      {"example.123", "the domain's last label is all digits"},
      {"example.com.", "the domain ends with a dot"},
      {"[192.0.2.1]", "address literals ([...]) are not accepted for bulk mail"},
      {std::string(64, 'a') + ".com", "a domain label is longer than 63 octets"},
      {std::string(60, 'b') + "." + std::string(60, 'c') + "." + std::string(60, 'd') + "." +
           std::string(60, 'e') + "." + std::string(60, 'f') + ".com",
       "the domain is longer than 253 octets"},
      {"exa\r\nmple.com",
       "the domain holds a line break (CR or LF), which could inject a mail header"},
      {" example.com",
       "domain label ' example' has a character other than a letter, digit or hyphen"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.input);
    auto d = parse_domain(b.input);
    REQUIRE_FALSE(d.ok());
    CHECK(d.error().message == b.error);
  }
  // libidn2's own words follow (here "string contains invalid punycode data").
  auto idn = parse_domain("xn--zz.example");
  REQUIRE_FALSE(idn.ok());
  CHECK(idn.error().message.rfind("the international domain is not valid: ", 0) == 0);
}

TEST_CASE("errors never repeat the address") {
  auto a = parse_address("secret.person@exa_mple.com");
  REQUIRE_FALSE(a.ok());
  CHECK(a.error().message.find("secret.person") == std::string::npos);
}

TEST_CASE("mailboxes with display names") {
  auto m = parse_mailbox("Example Telecom <Updates@Mail.Example.com>");
  REQUIRE(m.ok());
  CHECK(m->display_name == "Example Telecom");
  CHECK(m->address.str() == "updates@mail.example.com");

  m = parse_mailbox("\"Telecom, \\\"The\\\" Company\" <a@example.com>");
  REQUIRE(m.ok());
  CHECK(m->display_name == "Telecom, \"The\" Company");

  m = parse_mailbox("bare@example.com");
  REQUIRE(m.ok());
  CHECK(m->display_name.empty());

  CHECK_FALSE(parse_mailbox("Name <a@example.com").ok());
  CHECK_FALSE(parse_mailbox("Na\"me <a@example.com>").ok());
  CHECK_FALSE(parse_mailbox("Name\r\nBcc: x <a@example.com>").ok());
}

TEST_CASE("masking keeps the domain and hides the local part") {
  CHECK(mask_address("jane@example.com") == "j***@example.com");
  CHECK(mask_address("j@example.com") == "***@example.com");
  CHECK(mask_address("nonsense") == "***");
}

TEST_CASE("addresses quoted inside text from outside are masked, the rest kept") {
  struct Row {
    const char* in;
    const char* out;
  };
  for (Row r : {
           Row{"550 5.1.1 <bounce1@example.com>: Recipient address rejected",
               "550 5.1.1 <b***@example.com>: Recipient address rejected"},
           Row{"to a@example.com, and to pat.smith+x@mail.example.org.",
               "to ***@example.com, and to p***@mail.example.org."},
           Row{"\"quoted name\"@example.com", "\"quoted n***@example.com"},
           Row{"no address here @ all, user@ nor @host", "no address here @ all, u***@ nor @host"},
           Row{"j***@example.com", "j***@example.com"},  // masking again changes nothing
           // A URI's login is no one's address: the database a daemon names stays readable.
           Row{"database postgresql://bulkmail@db.example.com:5432/bulkmail: cannot connect",
               "database postgresql://bulkmail@db.example.com:5432/bulkmail: cannot connect"},
           Row{"mailto:pat@example.com", "mailto:p***@example.com"},
           Row{"", ""},
       }) {
    CAPTURE(r.in);
    CHECK(mask_addresses_in(r.in) == r.out);
  }
  // Whatever the text, no local part of more than one character survives before an @.
  std::string hostile = "x@y@z a.b@c@@d @@ 'o''r'@x.test";
  std::string masked = mask_addresses_in(hostile);
  CHECK(masked.find("a.b@") == std::string::npos);
  CHECK(masked.find("'o''r'@") == std::string::npos);
}

TEST_CASE("a domain IDNA maps to nothing is refused, not read past its end") {
  // U+034F COMBINING GRAPHEME JOINER: IDNA's mapping removes it (found by fuzz_address).
  auto a = parse_address("\"\"@\xcd\x8f");
  REQUIRE_FALSE(a);
  CHECK(a.error().message == "the domain after '@' maps to nothing (IDNA)");
  CHECK_FALSE(parse_domain("\xc2\xad"));  // a soft hyphen alone
}
