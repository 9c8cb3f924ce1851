#include "crypto/dkim.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <stdexcept>

#include "base/read_file.h"
#include "base/text.h"
#include "crypto/base64.h"

namespace bulkmail {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// True when relaxed canonicalization cannot change any line of `text`: no tab, no space followed
// by a space or a CR, no white space at its very end. Such a body (nearly every quoted-printable
// one) canonicalizes to itself minus trailing empty lines; such a one-line header value, to itself.
bool relaxed_is_identity(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size();
  std::size_t i = 0;
#ifdef __SSE2__
  // Sixteen bytes at a time, each compared with the byte after it (an unaligned load one further).
  const __m128i tab = _mm_set1_epi8('\t'), space = _mm_set1_epi8(' '), cr = _mm_set1_epi8('\r');
  for (; i + 17 <= n; i += 16) {
    __m128i here = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
    __m128i bad = _mm_or_si128(
        _mm_cmpeq_epi8(here, tab),
        _mm_and_si128(_mm_cmpeq_epi8(here, space),
                      _mm_or_si128(_mm_cmpeq_epi8(next, space), _mm_cmpeq_epi8(next, cr))));
    if (_mm_movemask_epi8(bad)) return false;
  }
#endif
  for (; i < n; ++i) {
    if (p[i] == '\t') return false;
    if (p[i] == ' ' && (i + 1 == n || p[i + 1] == ' ' || p[i + 1] == '\r')) return false;
  }
  return true;
}

// SHA-256 fetched once: OpenSSL 3 otherwise looks the algorithm up again on every use.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

// RFC 6376 3.4.2, appended to `out`: lower-case name, unfold, runs of white space to one space,
// none at the ends of the value or around the colon.
void append_relaxed_header(std::string& out, std::string_view field) {
  auto colon = field.find(':');
  for (char c : trim(field.substr(0, colon)))
    out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  out += ':';
  std::string_view value =
      colon == std::string_view::npos ? std::string_view() : field.substr(colon + 1);
  // Most fields are one line with single spaces: after the white space following the colon,
  // they are already canonical.
  std::size_t first = 0;
  while (first < value.size() && is_wsp(value[first])) ++first;
  std::string_view rest = value.substr(first);
  if (rest.size() >= 2 && rest.find('\r') == rest.size() - 2 && rest.back() == '\n' &&
      rest.find('\n') == rest.size() - 1 && relaxed_is_identity(rest.substr(0, rest.size() - 2))) {
    out.append(rest);
    return;
  }
  bool pending_space = false;
  bool at_start = true;  // white space right after the field's colon goes entirely
  std::size_t i = 0;
  while (i < value.size()) {
    char c = value[i];
    if (c == '\r' || c == '\n' || is_wsp(c)) {
      pending_space = pending_space || is_wsp(c);
      ++i;
      continue;
    }
    if (pending_space && !at_start) out += ' ';
    pending_space = false;
    at_start = false;
    std::size_t run = i;
    while (run < value.size() && !is_wsp(value[run]) && value[run] != '\r' && value[run] != '\n')
      ++run;
    out.append(value.data() + i, run - i);
    i = run;
  }
  out += "\r\n";
}

}  // namespace

std::string dkim_relaxed_header(std::string_view field) {
  std::string out;
  out.reserve(field.size() + 2);
  append_relaxed_header(out, field);
  return out;
}

namespace {

struct HeaderField {
  std::string_view name;  // as written, compared without regard to case
  std::string_view raw;   // the whole field with its folding and final CRLF
};

std::vector<HeaderField> parse_header_fields(std::string_view headers) {
  std::vector<HeaderField> fields;
  fields.reserve(24);
  std::size_t pos = 0;
  while (pos < headers.size()) {
    std::size_t end = pos;
    // A field runs until a CRLF not followed by white space.
    while (true) {
      std::size_t crlf = headers.find("\r\n", end);
      if (crlf == std::string_view::npos) {
        end = headers.size();
        break;
      }
      end = crlf + 2;
      if (end >= headers.size() || !is_wsp(headers[end])) break;
    }
    std::string_view raw = headers.substr(pos, end - pos);
    fields.push_back({trim(raw.substr(0, raw.find(':'))), raw});
    pos = end;
  }
  return fields;
}

}  // namespace

DkimKey::DkimKey(std::shared_ptr<EVP_PKEY> key, Algorithm a)
    : key_(std::move(key)), algorithm_(a), template_(EVP_MD_CTX_new(), MdCtxFree{}) {
  const EVP_MD* md = a == Algorithm::ed25519_sha256 ? nullptr : sha256_md();
  if (!template_ || EVP_DigestSignInit(template_.get(), nullptr, md, nullptr, key_.get()) != 1) {
    throw std::runtime_error("cannot initialize DKIM signing");
  }
}

Result<DkimKey> DkimKey::from_pem(std::string_view pem, int min_rsa_bits) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (!raw) return make_error("not a PEM private key");
  std::shared_ptr<EVP_PKEY> key(raw, EvpPkeyFree{});
  int id = EVP_PKEY_get_base_id(raw);
  if (id == EVP_PKEY_ED25519) return DkimKey(std::move(key), Algorithm::ed25519_sha256);
  if (id == EVP_PKEY_RSA) {
    int bits = EVP_PKEY_get_bits(raw);
    if (bits < min_rsa_bits) {
      return make_error("the RSA key has " + std::to_string(bits) + " bits; at least " +
                        std::to_string(min_rsa_bits) + " are required");
    }
    return DkimKey(std::move(key), Algorithm::rsa_sha256);
  }
  return make_error("the key is neither RSA nor Ed25519");
}

Result<DkimKey> DkimKey::from_pem_file(const std::string& path, int min_rsa_bits) {
  auto pem = read_file(path);
  if (!pem) return pem.error();
  return from_pem(*pem, min_rsa_bits);
}

Result<DkimKey> DkimKey::from_ed25519_seed(std::string_view seed) {
  if (seed.size() != 32) return make_error("an Ed25519 seed is 32 bytes");
  EVP_PKEY* raw = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(seed.data()), seed.size());
  if (!raw) return make_error("OpenSSL refused the Ed25519 seed");
  return DkimKey(std::shared_ptr<EVP_PKEY>(raw, EvpPkeyFree{}), Algorithm::ed25519_sha256);
}

const char* DkimKey::algorithm_name() const {
  return algorithm_ == Algorithm::rsa_sha256 ? "rsa-sha256" : "ed25519-sha256";
}

std::string DkimKey::dns_record_strings() const {
  std::string record = dns_record();
  std::string out;
  for (std::size_t at = 0; at < record.size(); at += 255) {
    if (!out.empty()) out += ' ';
    out += '"' + record.substr(at, 255) + '"';  // base64 and "v=DKIM1; ..." need no escaping
  }
  return out;
}

std::string DkimKey::dns_record() const {
  if (algorithm_ == Algorithm::ed25519_sha256) {
    unsigned char pub[32];
    std::size_t len = sizeof pub;
    EVP_PKEY_get_raw_public_key(key_.get(), pub, &len);
    return "v=DKIM1; k=ed25519; p=" +
           base64_encode(std::string_view(reinterpret_cast<char*>(pub), len));
  }
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key_.get(), &der);
  std::string p =
      base64_encode(std::string_view(reinterpret_cast<char*>(der), static_cast<std::size_t>(len)));
  OPENSSL_free(der);
  return "v=DKIM1; k=rsa; p=" + p;
}

std::string DkimKey::sign(std::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_MD_CTX_copy_ex(ctx.get(), template_.get()) != 1)
    throw std::runtime_error("DKIM signing failed to start");
  unsigned char hash[SHA256_DIGEST_LENGTH];
  if (algorithm_ == Algorithm::ed25519_sha256) {
    // RFC 8463: Ed25519 signs the SHA-256 hash of the data (PureEdDSA over 32 bytes).
    if (EVP_Digest(data.data(), data.size(), hash, nullptr, sha256_md(), nullptr) != 1) {
      throw std::runtime_error("SHA-256 failed");
    }
    data = std::string_view(reinterpret_cast<const char*>(hash), sizeof hash);
  }
  unsigned char sig[1024];  // RSA up to 8192 bits, Ed25519 64 bytes
  std::size_t len = sizeof sig;
  if (EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(data.data()),
                     data.size()) != 1) {
    throw std::runtime_error("DKIM signing failed");
  }
  return base64_encode(std::string_view(reinterpret_cast<const char*>(sig), len));
}

namespace {

// SHA-256 fed piece by piece, so canonicalization never copies the body.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), sha256_md(), nullptr) != 1)
      throw std::runtime_error("SHA-256 init failed");
  }
  void update(std::string_view s) {
    if (!s.empty()) EVP_DigestUpdate(ctx_.get(), s.data(), s.size());
  }
  std::string final_base64() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), md, &len);
    return base64_encode(std::string_view(reinterpret_cast<char*>(md), len));
  }

 private:
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx_;
};

}  // namespace

namespace {

// A relaxed body line (without its CRLF) that must be rewritten: a tab, two white space characters
// in a row, or white space at its end. Quoted-printable lines almost never are.
bool needs_relaxing(std::string_view line) {
  if (line.empty()) return false;
  if (is_wsp(line.back())) return true;
  const char* p = line.data();
  const char* end = p + line.size();
  for (; p + 1 < end; ++p) {
    if (*p == '\t' || (*p == ' ' && p[1] == ' ')) return true;
  }
  return false;
}

}  // namespace

std::string dkim_body_hash(std::string_view body, DkimCanon canon) {
  if (canon == DkimCanon::relaxed && relaxed_is_identity(body)) {
    // Drop the trailing empty lines; what is left gets its last line end back.
    std::size_t end = body.size();
    while (end >= 2 && body[end - 2] == '\r' && body[end - 1] == '\n') end -= 2;
    Sha256 sha;
    if (end > 0) {
      sha.update(body.substr(0, end));
      sha.update("\r\n");
    }
    return sha.final_base64();
  }
  // Both canonicalizations drop empty lines at the end of the body: empty lines are held back
  // and written only when a non-empty line follows. Lines that canonicalize to themselves are
  // hashed as one span of the body, so the hash is fed in a few large pieces, not line by line.
  Sha256 sha;
  std::size_t span_begin = 0, span_end = 0;  // body bytes hashed as they are, not yet fed
  std::size_t held_empty = 0;                // empty lines after the span
  bool held_in_place = true;  // the held lines are the body's own CRLFs right after the span
  bool any_line = false;
  std::string scratch;
  auto flush = [&] {
    sha.update(body.substr(span_begin, span_end - span_begin));
    span_begin = span_end;
  };
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t nl = body.find("\r\n", pos);
    bool terminated = nl != std::string_view::npos;
    std::size_t end = terminated ? nl : body.size();
    std::string_view line = body.substr(pos, end - pos);
    pos = terminated ? nl + 2 : body.size();
    bool rewritten = false;
    if (canon == DkimCanon::relaxed && needs_relaxing(line)) {
      scratch.clear();
      bool space = false;
      for (char ch : line) {
        if (is_wsp(ch)) {
          space = true;
          continue;
        }
        if (space) scratch += ' ';
        space = false;
        scratch += ch;
      }
      line = scratch;
      rewritten = true;
    }
    if (line.empty()) {
      if (rewritten || !terminated) held_in_place = false;
      ++held_empty;
      continue;
    }
    if (!rewritten && terminated && held_in_place) {
      span_end = pos;  // the held CRLFs and this line, all as they stand in the body
    } else {
      flush();
      for (; held_empty > 0; --held_empty) sha.update("\r\n");
      sha.update(line);
      sha.update("\r\n");
      span_begin = span_end = pos;
    }
    held_empty = 0;
    held_in_place = true;
    any_line = true;
  }
  flush();
  // An empty body is "" for relaxed and one CRLF for simple (RFC 6376 3.4.3, 3.4.4).
  if (!any_line && canon == DkimCanon::simple) sha.update("\r\n");
  return sha.final_base64();
}

namespace {

// The field signed for each of `names`, as indexes into `fields`: instances are taken from the
// bottom up (RFC 6376 5.4.2), and a name with no instance left is left out.
template <typename Names>
std::vector<std::size_t> select_fields(const std::vector<HeaderField>& fields, const Names& names) {
  std::vector<std::size_t> picked;
  picked.reserve(std::size(names));
  std::uint64_t used = 0;  // a bit per field; fields past 64 are never reused-checked twice
  std::vector<bool> used_more(fields.size() > 64 ? fields.size() : 0, false);
  auto is_used = [&](std::size_t i) { return i < 64 ? (used >> i) & 1 : used_more[i]; };
  auto set_used = [&](std::size_t i) {
    if (i < 64) {
      used |= std::uint64_t{1} << i;
    } else {
      used_more[i] = true;
    }
  };
  for (const auto& wanted : names) {
    std::string_view name = trim(wanted);
    for (std::size_t i = fields.size(); i-- > 0;) {
      if (is_used(i) || !iequals(fields[i].name, name)) continue;
      set_used(i);
      picked.push_back(i);
      break;
    }
  }
  return picked;
}

// Signs the `picked` fields and then the DKIM-Signature field, canonicalized into `data` (the
// caller's buffer, cleared first: only its capacity is reused). `signature_canonical`, when given,
// is that field already in relaxed form without its CRLF (the signer builds it alongside the
// folded one); otherwise `signature_header` is canonicalized here.
std::string sign_selected(const DkimKey& key, const std::vector<HeaderField>& fields,
                          const std::vector<std::size_t>& picked, std::string_view signature_header,
                          DkimCanon header_canon, std::string& data,
                          std::string_view signature_canonical = {}) {
  data.clear();
  for (std::size_t i : picked) {
    if (header_canon == DkimCanon::relaxed) {
      append_relaxed_header(data, fields[i].raw);
    } else {
      data += fields[i].raw;
    }
  }
  if (!signature_canonical.empty()) {
    data += signature_canonical;
  } else if (header_canon == DkimCanon::relaxed) {
    append_relaxed_header(data, signature_header);
    data.resize(data.size() - 2);  // no CRLF after the signature field
  } else {
    data += signature_header;
  }
  return key.sign(data);
}

std::string_view header_block(std::string_view message) {
  std::size_t split = message.find("\r\n\r\n");
  return split == std::string_view::npos ? message : message.substr(0, split + 2);
}

}  // namespace

std::string dkim_sign_headers(const DkimKey& key, std::string_view message,
                              std::string_view signature_header,
                              const std::vector<std::string>& signed_headers,
                              DkimCanon header_canon) {
  auto fields = parse_header_fields(header_block(message));
  std::string data;
  return sign_selected(key, fields, select_fields(fields, signed_headers), signature_header,
                       header_canon, data);
}

std::string DkimSigner::signature(std::string_view message,
                                  const std::vector<std::string>& header_names, UnixMillis now,
                                  std::string& scratch) const {
  std::string_view headers = header_block(message);
  std::string_view body = headers.size() + 2 <= message.size() ? message.substr(headers.size() + 2)
                                                               : std::string_view();
  auto fields = parse_header_fields(headers);
  // The fields to sign, found once: h= names each one that is present.
  std::vector<std::size_t> picked = select_fields(fields, header_names);
  std::vector<std::string_view> h;
  h.reserve(picked.size());
  for (std::size_t i : picked) h.push_back(fields[i].name);
  // The field as sent (folded) and its relaxed canonical form are built side by side: a fold
  // (CRLF and white space) is one space in the canonical form, and nothing else differs.
  std::string header, canonical;
  header.reserve(1024);
  canonical.reserve(1024);
  header += "DKIM-Signature: ";
  canonical += "dkim-signature:";
  auto add = [&](std::string_view text) {
    header += text;
    canonical += text;
  };
  auto fold = [&](std::string_view white_space) {
    header += "\r\n";
    header += white_space;
    canonical += ' ';
  };
  add("v=1; a=");
  add(key_.algorithm_name());
  add("; c=relaxed/relaxed; d=");
  add(domain_);
  add("; s=");
  add(selector_);
  add(";");
  fold("\t");
  add("t=");
  add(std::to_string(now / 1000));
  add("; bh=");
  add(dkim_body_hash(body, DkimCanon::relaxed));
  add(";");
  fold("\t");
  add("h=");
  // Each name twice (over-signing: an added instance breaks the signature), folded at colons.
  std::size_t col = 3;
  for (std::size_t i = 0; i < 2 * h.size(); ++i) {
    if (i) {
      add(":");
      ++col;
      if (col > 64) {
        fold("\t ");
        col = 1;
      }
    }
    add(h[i % h.size()]);
    col += h[i % h.size()].size();
  }
  add(";");
  fold("\t");
  add("b=");
  std::string b =
      sign_selected(key_, fields, picked, header, DkimCanon::relaxed, scratch, canonical);
  for (std::size_t i = 0; i < b.size(); i += 72) {
    if (i) header += "\r\n\t ";
    header.append(b, i, 72);
  }
  header += "\r\n";
  return header;
}

}  // namespace bulkmail
