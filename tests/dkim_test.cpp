#include "crypto/dkim.h"

#include <doctest/doctest.h>

#include <cstdlib>

#include "temp_dir.h"

#include <thread>

#include <fstream>
#include <sstream>

#include "crypto/base64.h"
#include "test_config.h"

using namespace bulkmail;
using namespace bulkmail::test;

namespace {

std::string read(const std::string& name) {
  std::ifstream in(source_dir() + "/tests/data/rfc8463/" + name, std::ios::binary);
  REQUIRE_MESSAGE(in, "missing test data " << name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string to_crlf(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

// The i-th DKIM-Signature field of the published signed message, CRLF, without its final CRLF.
std::string signature_field(const std::string& signed_msg, int index) {
  std::string crlf = to_crlf(signed_msg);
  std::size_t pos = 0;
  for (int i = 0; i <= index; ++i) pos = crlf.find("DKIM-Signature:", i == 0 ? 0 : pos + 1);
  std::size_t end = crlf.find("\r\n", pos);
  while (crlf[end + 2] == ' ' || crlf[end + 2] == '\t') end = crlf.find("\r\n", end + 2);
  return crlf.substr(pos, end - pos);
}

// Splits a signature field into its text up to and including "b=" and the b= value unfolded.
std::pair<std::string, std::string> split_b(const std::string& field) {
  auto b = field.rfind("b=");
  std::string value;
  for (char c : field.substr(b + 2)) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') value += c;
  }
  return {field.substr(0, b + 2), value};
}

const std::vector<std::string> kRfcHeaders = {"from",       "to",   "subject", "date",
                                              "message-id", "from", "subject", "date"};

}  // namespace

TEST_CASE("RFC 8463 A.3: the Ed25519 signature reproduces byte for byte") {
  auto seed = base64_decode(read("ed25519.seed"));
  REQUIRE(seed);
  auto key = DkimKey::from_ed25519_seed(*seed);
  REQUIRE(key.ok());
  CHECK(key->dns_record() == "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  std::string message = to_crlf(read("message.eml"));
  auto [header, expected_b] = split_b(signature_field(read("signed.eml"), 0));
  REQUIRE(header.find("a=ed25519-sha256") != std::string::npos);
  auto body = message.substr(message.find("\r\n\r\n") + 4);
  CHECK(dkim_body_hash(body, DkimCanon::simple) == "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=");
  CHECK(dkim_sign_headers(*key, message, header, kRfcHeaders, DkimCanon::simple) == expected_b);
}

TEST_CASE("Ed25519 signatures repeat exactly: again, after another key, and on another thread") {
  // Ed25519 is deterministic, so every signature of the same data with the same key is the same;
  // signing keeps no state between calls that could mix keys up.
  auto rfc = DkimKey::from_ed25519_seed(*base64_decode(read("ed25519.seed")));
  auto other = DkimKey::from_ed25519_seed(std::string(32, 'k'));
  REQUIRE(rfc.ok());
  REQUIRE(other.ok());
  std::string first = rfc->sign("data");
  CHECK(rfc->sign("data") == first);
  std::string from_other = other->sign("data");
  CHECK(from_other != first);
  CHECK(rfc->sign("data") == first);
  CHECK(other->sign("data") == from_other);
  std::string elsewhere;
  std::thread([&] { elsewhere = rfc->sign("data"); }).join();
  CHECK(elsewhere == first);
  auto again = DkimKey::from_ed25519_seed(std::string(32, 'u'));
  CHECK(again->sign("data") != first);
  CHECK(again->sign("data") != from_other);
}

TEST_CASE("RFC 8463 A.3: the RSA signature reproduces byte for byte") {
  auto key = DkimKey::from_pem(read("rsa.pem"), 1024);
  REQUIRE(key.ok());
  std::string message = to_crlf(read("message.eml"));
  auto [header, expected_b] = split_b(signature_field(read("signed.eml"), 1));
  REQUIRE(header.find("a=rsa-sha256") != std::string::npos);
  CHECK(dkim_sign_headers(*key, message, header, kRfcHeaders, DkimCanon::simple) == expected_b);
}

TEST_CASE("the signer's results are independent: a second signature leaves the first intact") {
  // The caller owns the canonicalization buffer and each signature: signing another message with
  // the same buffer neither changes the first result nor makes it stale.
  auto key = DkimKey::from_ed25519_seed(*base64_decode(read("ed25519.seed")));
  REQUIRE(key.ok());
  DkimSigner signer(*key, "example.com", "s1");
  const std::vector<std::string> names = {"From", "To", "Subject"};
  const std::string a =
      "From: a@example.com\r\nTo: b@example.com\r\nSubject: first\r\n\r\nHello\r\n";
  const std::string b =
      "From: a@example.com\r\nTo: b@example.com\r\nSubject: second\r\n\r\nOther\r\n";
  const UnixMillis now = 1'795'000'000'000;
  std::string scratch;
  const std::string first = signer.signature(a, names, now, scratch);
  const std::string kept = first;
  const std::string second = signer.signature(b, names, now, scratch);
  CHECK(first == kept);
  CHECK(first != second);
  // Ed25519 is deterministic: each message signed again, with a buffer of its own, gives the same.
  std::string other;
  CHECK(signer.signature(a, names, now, other) == first);
  CHECK(signer.signature(b, names, now, other) == second);
  // And the first still signs message a, as the generic signer computes it independently.
  auto at = first.find("\r\n\tb=");
  REQUIRE(at != std::string::npos);
  std::string header = first.substr(0, at + 5);
  std::string value;
  for (char c : first.substr(at + 5)) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') value += c;
  }
  const std::vector<std::string> h = {"From", "To", "Subject", "From", "To", "Subject"};
  CHECK(dkim_sign_headers(*key, a, header, h, DkimCanon::relaxed) == value);
  CHECK(dkim_sign_headers(*key, b, header, h, DkimCanon::relaxed) != value);
}

TEST_CASE("configured keys: RSA under 2048 bits and non-keys are refused") {
  auto small = DkimKey::from_pem(read("rsa.pem"));
  REQUIRE_FALSE(small.ok());
  CHECK(small.error().message == "the RSA key has 1024 bits; at least 2048 are required");
  CHECK_FALSE(
      DkimKey::from_pem("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
          .ok());
  CHECK_FALSE(DkimKey::from_ed25519_seed("short").ok());
}

TEST_CASE("relaxed body canonicalization ignores trailing blank lines and white space runs") {
  CHECK(dkim_body_hash("a  b \r\nc\r\n\r\n\r\n", DkimCanon::relaxed) ==
        dkim_body_hash("a b\r\nc\r\n", DkimCanon::relaxed));
  CHECK(dkim_body_hash("", DkimCanon::relaxed) ==
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");  // sha256("")
  CHECK(dkim_body_hash("", DkimCanon::simple) ==
        "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");  // sha256(CRLF)
}

TEST_CASE("relaxed body canonicalization line by line") {
  // The relaxed hash of each body equals the simple hash of its canonical form written out by
  // hand (simple canonicalization of text that is already canonical changes nothing).
  struct Case {
    const char* in;
    const char* canonical;
  };
  const Case cases[] = {
      {"plain\r\nlines\r\n", "plain\r\nlines\r\n"},
      {"no final line end", "no final line end\r\n"},
      {"a\r\n\r\n\r\nb\r\n", "a\r\n\r\n\r\nb\r\n"},
      {"a\r\n   \r\n\t\r\nb\r\n", "a\r\n\r\n\r\nb\r\n"},
      {"a\r\n  \r\n", "a\r\n"},
      {"a\r\n\r\n  ", "a\r\n"},
      {"tab\there\r\nx  y\r\n", "tab here\r\nx y\r\n"},
      {"end \r\n\r\nmid\t \r\n", "end\r\n\r\nmid\r\n"},
      {"\r\n\r\nfirst\r\n", "\r\n\r\nfirst\r\n"},
      {"\r\n \r\nfirst\r\n\r\n", "\r\n\r\nfirst\r\n"},
      {"x\r\n\r\ny", "x\r\n\r\ny\r\n"},
      {" lead\r\n", " lead\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    CHECK(dkim_body_hash(c.in, DkimCanon::relaxed) ==
          dkim_body_hash(c.canonical, DkimCanon::simple));
  }
}

TEST_CASE("relaxed body canonicalization finds white space at every offset") {
  // The signer scans sixteen bytes at a time; a double space, a tab or a space before the line
  // end must be found wherever it falls relative to those words.
  for (std::size_t k = 0; k <= 40; ++k) {
    CAPTURE(k);
    std::string left(k, 'x'), right(45 - k, 'y');
    CHECK(dkim_body_hash(left + "  " + right + "\r\n", DkimCanon::relaxed) ==
          dkim_body_hash(left + " " + right + "\r\n", DkimCanon::simple));
    CHECK(dkim_body_hash(left + "\t" + right + "\r\n", DkimCanon::relaxed) ==
          dkim_body_hash(left + " " + right + "\r\n", DkimCanon::simple));
    CHECK(dkim_body_hash(left + " \r\n" + right + "\r\n", DkimCanon::relaxed) ==
          dkim_body_hash(left + "\r\n" + right + "\r\n", DkimCanon::simple));
    CHECK(dkim_body_hash(left + " " + right + "\r\n", DkimCanon::relaxed) ==
          dkim_body_hash(left + " " + right + "\r\n", DkimCanon::simple));
  }
}

TEST_CASE("relaxed header canonicalization") {
  struct Case {
    const char* in;
    const char* out;
  };
  const Case cases[] = {
      {"Subject: Re: lunch\r\n", "subject:Re: lunch\r\n"},
      {"SUBJECT  :  a \t b  \r\n", "subject:a b\r\n"},
      {"h: From:To:\r\n\t List-Id\r\n", "h:From:To: List-Id\r\n"},
      {"X:\r\n folded\r\n", "x:folded\r\n"},
      {"Subject: two  spaces\r\n", "subject:two spaces\r\n"},
      {"X: trailing \r\n", "x:trailing\r\n"},
      {"X:\tvalue\tand tab\r\n", "x:value and tab\r\n"},
      {"X: a\r\n b\r\n", "x:a b\r\n"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.in);
    CHECK(dkim_relaxed_header(c.in) == c.out);
  }
}

TEST_CASE("the DNS record is written as strings of at most 255 bytes") {
  TempDir dir;
  auto pem = (dir / "rsa.pem").string();
  REQUIRE(std::system(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + pem +
                       " 2>/dev/null")
                          .c_str()) == 0);
  auto key = DkimKey::from_pem_file(pem);
  REQUIRE(key.ok());
  std::string record = key->dns_record();
  REQUIRE(record.size() > 255);  // one string could not hold it
  std::string written = key->dns_record_strings();
  std::string joined;
  std::size_t strings = 0;
  for (std::size_t at = 0; at < written.size();) {
    REQUIRE(written[at] == '"');
    auto end = written.find('"', at + 1);
    REQUIRE(end != std::string::npos);
    CHECK(end - at - 1 <= 255);
    joined += written.substr(at + 1, end - at - 1);
    ++strings;
    at = end + 1;
    if (at < written.size()) {
      CHECK(written[at] == ' ');
      ++at;
    }
  }
  CHECK(strings == (record.size() + 254) / 255);
  CHECK(joined == record);
}
