// The composer: turns a queued message, its category and the config into the exact bytes handed
// to SMTP, compliant by construction. It refuses to produce a message that lacks the sender's
// postal address or a working opt-out in either part, or whose headers a value could split.
//
// Headers: From, To, Reply-To (when configured), Subject, Date, Message-ID, MIME-Version,
// List-Unsubscribe (https, plus mailto when configured), List-Unsubscribe-Post (RFC 8058),
// List-Id (RFC 2919), Feedback-ID (when configured), CFBL-Address (RFC 9477, when
// bounces.domain is set), Content-Type multipart/alternative; then DKIM-Signature on top when DKIM
// is configured. The envelope sender goes beside the bytes: the message's own VERP address when
// bounces.domain is set (crypto/verp_token.h), else sender.return_path.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "compose/compose_scratch.h"
#include "compose/message_template.h"
#include "compose/vars.h"
#include "config/config.h"
#include "crypto/dkim.h"
#include "crypto/unsubscribe_token.h"
#include "crypto/verp_token.h"
#include "store/store.h"

namespace bulkmail {

struct ComposeRequest {
  std::string category;
  std::string recipient;  // normalized
  Vars vars;
  std::string campaign;  // may be empty
  MessageId id = 0;      // the queue's id, 0 for a preview
  UnixMillis now = 0;
};

struct ComposedMessage {
  std::string data;        // RFC 5322 bytes, CRLF line ends
  std::string message_id;  // "<...@domain>"
  std::string unsubscribe_url;
  // The SMTP envelope sender (MAIL FROM) to send it with: b-<token>@<bounces.domain>, naming
  // ComposeRequest::id (0 for a preview), or sender.return_path without bounces.domain.
  std::string envelope_from;
};

class Composer {
 public:
  // Loads every category's template and the DKIM key. The error names the template file or key.
  static Result<std::unique_ptr<Composer>> create(std::shared_ptr<const Config> config);

  // A composer of the same config and templates for another thread, without reading a file: the
  // templates are compiled anew from the text this one read, and the keys (tokens, VERP, DKIM)
  // are shared, not set up again. Safe on one composer from many threads at once (it reads only
  // what create() set); it fails only for want of memory. `sign` false leaves DKIM out (a compose
  // check, which never sends).
  std::unique_ptr<Composer> clone(bool sign = true) const;

  // Not thread-safe (templates render through mutable state): one Composer per thread, and with
  // it one ComposeScratch, which keeps what one message leaves for the next (the Message-ID
  // generator, the Date of the current second, the DKIM buffer). This is the only way to compose:
  // the sender's hot path passes its own scratch, a one-off caller a local one.
  Result<ComposedMessage> compose(const ComposeRequest& request, ComposeScratch& scratch) const;

 private:
  Composer() = default;
  // compose's steps, in order. The parts rendered with the message's variables and the built-ins,
  // each given the footer its template does not place itself; an error when a variable names a
  // built-in or a part fails check_compliance.
  Result<RenderedParts> render_parts(const ComposeRequest& r, const CategoryConfig& cat,
                                     const MessageTemplate& tmpl, const std::string& token,
                                     const std::string& url) const;
  // Whether the text and HTML parts both carry the unsubscribe link (`url`, which ends in `token`)
  // and the postal address; the error names the template and the part that lacks one.
  Result<void> check_compliance(const RenderedParts& parts, const CategoryConfig& cat,
                                const std::string& token, const std::string& url) const;
  // Every header field but DKIM-Signature (compose adds it over the whole message), each checked
  // and folded; the error names the field.
  Result<std::string> header_block(const ComposeRequest& r, const CategoryConfig& cat,
                                   const std::string& subject, const ComposedMessage& out,
                                   const std::string& boundary, DateCache& dates) const;

  std::shared_ptr<const Config> config_;
  std::map<std::string, std::shared_ptr<MessageTemplate>> templates_;  // by category
  std::map<std::string, std::array<std::string, 3>> footers_;  // HTML footer around its links
  std::string url_base_html_;                                  // "<unsubscribe.url>/", escaped
  std::string postal_html_;                                    // the postal address, escaped
  std::unique_ptr<TokenCodec> tokens_;
  std::optional<VerpCodec> verp_;  // with bounces.domain; copies share its keys
  std::optional<DkimSigner> signer_;
};

}  // namespace bulkmail
