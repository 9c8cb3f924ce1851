// DKIM signing (RFC 6376) with rsa-sha256 or ed25519-sha256 (RFC 8463), through OpenSSL's EVP
// interface. Signing is the last step of composition: every other header is in place by then.
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/result.h"

namespace bulkmail {

enum class DkimCanon { simple, relaxed };

struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// A private signing key. Shareable between threads: signing only reads it.
class DkimKey {
 public:
  enum class Algorithm { rsa_sha256, ed25519_sha256 };

  // A PEM private key (PKCS#1, PKCS#8). RSA keys under `min_rsa_bits` are refused.
  static Result<DkimKey> from_pem(std::string_view pem, int min_rsa_bits = 2048);
  static Result<DkimKey> from_pem_file(const std::string& path, int min_rsa_bits = 2048);
  // A raw 32-byte Ed25519 seed (RFC 8032), as RFC 8463's example publishes it.
  static Result<DkimKey> from_ed25519_seed(std::string_view seed);

  Algorithm algorithm() const { return algorithm_; }
  const char* algorithm_name() const;
  // The public key as the DNS TXT record publishes it: "v=DKIM1; k=...; p=...".
  std::string dns_record() const;
  // dns_record() as a zone file writes it: quoted strings of at most 255 bytes each (one DNS
  // character-string's limit), which resolvers join back together ("..." "...").
  std::string dns_record_strings() const;

  // The raw signature of `data` (for Ed25519, of its SHA-256 hash, as RFC 8463 defines).
  std::string sign(std::string_view data) const;

 private:
  DkimKey(std::shared_ptr<EVP_PKEY> key, Algorithm a);
  std::shared_ptr<EVP_PKEY> key_;
  Algorithm algorithm_;
  // A signing context initialized once; each signature works on a copy, which costs far less
  // than initializing (OpenSSL 3 fetches the algorithm on every init).
  std::shared_ptr<EVP_MD_CTX> template_;
};

// One header field in relaxed canonical form (RFC 6376 3.4.2), ending in CRLF.
std::string dkim_relaxed_header(std::string_view field);

// The canonicalized body's hash, base64: the bh= tag.
std::string dkim_body_hash(std::string_view body, DkimCanon canon);

// The b= value for `message` (headers, CRLF CRLF, body) given the signature header's exact text
// with an empty b= ("DKIM-Signature: v=1; ...; b="), the h= header names in order, and the header
// canonicalization. Headers are chosen bottom-up; a name listed more often than it occurs signs
// as empty (over-signing). Canonicalizes into a buffer of its own: for tests and one-off checks,
// not the sending path (DkimSigner::signature).
std::string dkim_sign_headers(const DkimKey& key, std::string_view message,
                              std::string_view signature_header,
                              const std::vector<std::string>& signed_headers,
                              DkimCanon header_canon);

// Signs outgoing mail with relaxed/relaxed canonicalization.
class DkimSigner {
 public:
  DkimSigner(DkimKey key, std::string domain, std::string selector)
      : key_(std::move(key)), domain_(std::move(domain)), selector_(std::move(selector)) {}

  // The DKIM-Signature header field (folded, ending in CRLF) to put on top of `message`. Signs
  // each header of `header_names` present in the message, and each once more, so that no
  // instance can be added in transit.
  //
  // `scratch` is the caller's buffer for the canonicalized headers, cleared and refilled on each
  // call, so that a sender reuses its capacity instead of allocating one per message (the composer
  // passes ComposeScratch::dkim_canon); `message` must not be a view of it. Nothing returned
  // refers to it: the result is the caller's own, and no later call, with the same buffer or
  // another, can change it.
  std::string signature(std::string_view message, const std::vector<std::string>& header_names,
                        UnixMillis now, std::string& scratch) const;

 private:
  DkimKey key_;
  std::string domain_;
  std::string selector_;
};

}  // namespace bulkmail
