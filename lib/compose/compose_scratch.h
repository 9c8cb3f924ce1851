// What composing reuses from one message to the next, so that a message costs no generator
// seeding, no date formatting within the same second and no new DKIM buffer (each earned its place
// in bench/compose). It is explicit state, passed to Composer::compose, not hidden per thread.
//
// Whoever composes owns one: each Sender (one per sender thread), the compose check (under its
// lock), a preview (on its stack). It belongs to one thread at a time. Nothing in it depends on
// the config, so it outlives reloads and the Composer each reload rebuilds.
#pragma once

#include <openssl/rand.h>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>

#include "compose/mime.h"

namespace bulkmail {

struct ComposeScratch {
  ComposeScratch() : rng(openssl_seed()) {}
  // A copy would repeat the original's Message-IDs.
  ComposeScratch(const ComposeScratch&) = delete;
  ComposeScratch& operator=(const ComposeScratch&) = delete;

  // The 96 random bits of each Message-ID and MIME boundary. They must be unique, not secret (the
  // boundary's "=_" cannot occur in quoted-printable text whatever follows): a generator seeded
  // once from OpenSSL's, instead of a locked RAND_bytes call per message.
  std::mt19937_64 rng;
  // The Date header of the current second.
  DateCache dates;
  // The DKIM signer's canonicalization buffer (DkimSigner::signature): only its capacity carries
  // over from one message to the next.
  std::string dkim_canon;

 private:
  static std::uint64_t openssl_seed() {
    std::uint64_t seed = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1)
      throw std::runtime_error("RAND_bytes failed");
    return seed;
  }
};

}  // namespace bulkmail
