#include "crypto/digest.h"

#include <doctest/doctest.h>

using namespace bulkmail;

TEST_CASE("hex and SHA-256 against published vectors") {
  CHECK(hex_encode(std::string("\x00\x0f\xa5\xff", 4)) == "000fa5ff");
  CHECK(hex_encode("") == "");
  // FIPS 180-2, appendix B.1 and the empty message.
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
