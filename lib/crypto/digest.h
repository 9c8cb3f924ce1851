// Hashes through OpenSSL's EVP interface.
#pragma once

#include <string>
#include <string_view>

namespace bulkmail {

// Lower-case hex of `bytes`.
std::string hex_encode(std::string_view bytes);

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

}  // namespace bulkmail
