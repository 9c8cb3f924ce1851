#include "compose/composer.h"

#include <set>

#include <array>
#include <cstring>
#include <random>
#include <type_traits>

#include "base/text.h"
#include "compose/mime.h"
#include "crypto/digest.h"

namespace bulkmail {
namespace {

// The headers DKIM signs (each present one, and once more: see DkimSigner::signature).
// CFBL-Address must be: RFC 9477 has providers ignore one that no aligned signature covers.
const std::vector<std::string> kSignedHeaders = {
    "From",       "To",           "Reply-To",     "Subject",          "Date",
    "Message-ID", "MIME-Version", "Content-Type", "List-Unsubscribe", "List-Unsubscribe-Post",
    "List-Id",    "Feedback-ID",  "CFBL-Address"};

// 96 bits for a Message-ID and MIME boundary, from the sender's generator (ComposeScratch::rng).
std::string unique_hex(std::mt19937_64& gen) {
  std::uint64_t a = gen(), b = gen();
  char buf[12];
  std::memcpy(buf, &a, 8);
  std::memcpy(buf + 8, &b, 4);
  return hex_encode(std::string_view(buf, sizeof buf));
}

std::string text_footer(const Config& c, const CategoryConfig& cat, const std::string& url,
                        const std::string& all_url) {
  const std::string& org = c.sender.organization;
  return "\n\n--\nYou are receiving this email from " + org +
         " because you are a customer and get \"" + cat.description + "\".\nUnsubscribe from \"" +
         cat.description + "\": " + url + "\nStop all email from " + org + ": " + all_url + "\n" +
         org + ", " + c.sender.postal_address + "\n";
}

// The HTML footer is fixed text around the two links: built once per category, split at the
// places the links go.
std::array<std::string, 3> html_footer_pieces(const Config& c, const CategoryConfig& cat) {
  std::string org = html_escape(c.sender.organization);
  std::string desc = html_escape(cat.description);
  return {
      "<div style=\"max-width:600px;margin:16px auto;padding:0 12px;font-family:Arial,Helvetica,"
      "sans-serif;font-size:12px;line-height:1.5;color:#52606d;\">\n<p>You are receiving this "
      "email from " +
          org + " because you are a customer and get &quot;" + desc + "&quot;.</p>\n<p><a href=\"",
      "\" style=\"color:#52606d;\">Unsubscribe from &quot;" + desc +
          "&quot;</a> &middot; <a href=\"",
      "\" style=\"color:#52606d;\">Stop all email from " + org + "</a></p>\n<p>" + org + ", " +
          html_escape(c.sender.postal_address) + "</p>\n</div>\n"};
}

// Puts the footer before the last </body> (any case) when the document has one, else at the end.
void insert_html_footer(std::string& html, const std::string& footer) {
  for (std::size_t pos = html.rfind("</"); pos != std::string::npos;
       pos = pos ? html.rfind("</", pos - 1) : std::string::npos) {
    if (to_lower_ascii(std::string_view(html).substr(pos, 7)) == "</body>") {
      html.insert(pos, footer);
      return;
    }
    if (pos == 0) break;
  }
  html += "\n" + footer;
}

// The built-in variables' values for one message, by name.
Vars builtin_values(const Config& c, const CategoryConfig& cat, const ComposeRequest& r,
                    const std::string& url, const std::string& all_url) {
  // In the order of kBuiltinVars.
  const std::string* const values[] = {
      &url,         &all_url,        &c.sender.postal_address, &c.sender.organization,
      &r.recipient, &cat.description};
  static_assert(std::extent_v<decltype(values)> == kBuiltinVars.size(),
                "a value for each built-in variable");
  Vars vars;
  for (std::size_t i = 0; i < kBuiltinVars.size(); ++i) vars.emplace(kBuiltinVars[i], *values[i]);
  return vars;
}

// What follows the header block: the text and HTML parts, quoted-printable, as
// multipart/alternative.
void append_body(std::string& m, const RenderedParts& parts, const std::string& boundary) {
  m += "\r\nThis is a multi-part message in MIME format.\r\n\r\n--" + boundary + "\r\n";
  m += "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
       "quoted-printable\r\n\r\n";
  append_quoted_printable(m, parts.text);
  m += "--" + boundary + "\r\n";
  m += "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: "
       "quoted-printable\r\n\r\n";
  append_quoted_printable(m, parts.html);
  m += "--" + boundary + "--\r\n";
}

}  // namespace

Result<std::unique_ptr<Composer>> Composer::create(std::shared_ptr<const Config> config) {
  std::unique_ptr<Composer> c(new Composer());
  // Every template's problems at once (bulkmaild --check), one a line; a template two categories
  // share is reported once.
  std::string problems;
  std::set<std::string> reported;
  for (const auto& [name, cat] : config->categories) {
    auto t = MessageTemplate::load(config->templates / cat.template_name);
    if (!t) {
      if (reported.insert(cat.template_name).second)
        problems += (problems.empty() ? "" : "\n") + t.error().message;
      continue;
    }
    c->templates_.emplace(name, std::move(t.value()));
    c->footers_.emplace(name, html_footer_pieces(*config, cat));
  }
  if (!problems.empty()) return make_error(problems);
  c->url_base_html_ = html_escape(config->unsubscribe.url + "/");
  c->postal_html_ = html_escape(config->sender.postal_address);
  c->tokens_ =
      std::make_unique<TokenCodec>(config->unsubscribe.keys, config->unsubscribe.token_expiry_days);
  if (!config->bounces.domain.empty()) c->verp_.emplace(config->unsubscribe.keys);
  if (config->dkim && !config->dkim->key) return make_error("dkim: the key is not loaded");
  if (config->dkim)
    c->signer_.emplace(*config->dkim->key, config->dkim->domain, config->dkim->selector);
  c->config_ = std::move(config);
  return c;
}

std::unique_ptr<Composer> Composer::clone(bool sign) const {
  std::unique_ptr<Composer> c(new Composer());
  for (const auto& [name, t] : templates_) c->templates_.emplace(name, t->clone());
  c->footers_ = footers_;
  c->url_base_html_ = url_base_html_;
  c->postal_html_ = postal_html_;
  c->tokens_ = std::make_unique<TokenCodec>(*tokens_);  // shares its keys: no OpenSSL setup
  c->verp_ = verp_;
  if (sign) c->signer_ = signer_;
  c->config_ = config_;
  return c;
}

Result<ComposedMessage> Composer::compose(const ComposeRequest& r, ComposeScratch& scratch) const {
  const Config& c = *config_;
  const CategoryConfig* cat = c.category(r.category);
  auto tmpl = templates_.find(r.category);
  if (!cat || tmpl == templates_.end()) return make_error("unknown category '" + r.category + "'");

  ComposedMessage out;
  std::string token = tokens_->issue({r.recipient, r.category, r.now / 1000});
  out.unsubscribe_url = c.unsubscribe.url + "/" + token;
  auto parts = render_parts(r, *cat, *tmpl->second, token, out.unsubscribe_url);
  if (!parts) return parts.error();

  std::string unique = unique_hex(scratch.rng);
  out.message_id = "<" + (r.id ? std::to_string(r.id) + "." : std::string()) + unique + "@" +
                   c.sender.from.address.domain + ">";
  std::string boundary = "=_bulkmail_" + unique;  // "=_" never occurs in quoted-printable text
  out.envelope_from =
      verp_ ? verp_address(*verp_, r.id, c.bounces.domain) : c.sender.return_path.str();
  auto headers = header_block(r, *cat, parts->subject, out, boundary, scratch.dates);
  if (!headers) return headers.error();

  std::string& m = out.data;
  m.reserve(headers->size() + parts->text.size() + parts->html.size() + 1024);
  m += *headers;
  append_body(m, *parts, boundary);
  if (signer_) m.insert(0, signer_->signature(m, kSignedHeaders, r.now, scratch.dkim_canon));
  return out;
}

Result<RenderedParts> Composer::render_parts(const ComposeRequest& r, const CategoryConfig& cat,
                                             const MessageTemplate& tmpl, const std::string& token,
                                             const std::string& url) const {
  for (const auto& [k, _] : r.vars) {
    if (is_builtin_var(k))
      return make_error("variable '" + k + "' is filled in by bulkmail and cannot be set");
  }
  std::string all_url = url + "?scope=all";
  auto parts = tmpl.render(r.vars, builtin_values(*config_, cat, r, url, all_url));
  if (!parts) return parts;
  if (!tmpl.text_places_compliance()) parts->text += text_footer(*config_, cat, url, all_url);
  if (!tmpl.html_places_compliance()) {
    const auto& f = footers_.at(r.category);
    std::string url_html = url_base_html_ + token;
    insert_html_footer(parts->html, f[0] + url_html + f[1] + url_html + "?scope=all" + f[2]);
  }
  // The check that makes compliance a property of every message, whatever the template does.
  if (auto compliant = check_compliance(*parts, cat, token, url); !compliant)
    return compliant.error();
  return parts;
}

Result<void> Composer::check_compliance(const RenderedParts& parts, const CategoryConfig& cat,
                                        const std::string& token, const std::string& url) const {
  if (parts.text.find(url) == std::string::npos ||
      parts.text.find(config_->sender.postal_address) == std::string::npos) {
    return make_error("template " + cat.template_name +
                      ": the text part lacks the unsubscribe link or postal address");
  }
  if (parts.html.find(url_base_html_ + token) == std::string::npos ||
      parts.html.find(postal_html_) == std::string::npos) {
    return make_error("template " + cat.template_name +
                      ": the html part lacks the unsubscribe link or postal address");
  }
  return {};
}

Result<std::string> Composer::header_block(const ComposeRequest& r, const CategoryConfig& cat,
                                           const std::string& subject_text,
                                           const ComposedMessage& out, const std::string& boundary,
                                           DateCache& dates) const {
  const Config& c = *config_;
  const std::string& domain = c.sender.from.address.domain;
  std::string h;
  auto add = [&](Result<std::string> field) -> bool {
    if (!field) return false;
    h += *field;
    return true;
  };
  auto from = mailbox_text(c.sender.from.display_name, c.sender.from.address.str());
  if (!from) return make_error("sender.from: " + from.error().message);
  if (!add(structured_header("From", *from))) return make_error("From header");
  if (!add(structured_header("To", r.recipient)))
    return make_error("to: the recipient cannot stand in a header");
  if (c.sender.reply_to) add(structured_header("Reply-To", c.sender.reply_to->str()));
  auto subject = unstructured_header("Subject", subject_text);
  if (!subject) return make_error("subject: " + subject.error().message);
  h += *subject;
  h += "Date: ";
  dates.append(h, r.now);
  h += "\r\n";
  h += "Message-ID: " + out.message_id + "\r\n";
  h += "MIME-Version: 1.0\r\n";
  std::string lu = "<" + out.unsubscribe_url + ">";
  if (c.unsubscribe.mailto)
    lu += ", <mailto:" + c.unsubscribe.mailto->str() + "?subject=unsubscribe>";
  if (!add(structured_header("List-Unsubscribe", lu))) return make_error("List-Unsubscribe");
  h += "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";
  std::string list_id = cat.name + "." + domain;
  auto list_phrase = mailbox_text(cat.description, list_id);
  if (!list_phrase) return make_error("List-Id: " + list_phrase.error().message);
  auto list_header = structured_header("List-Id", *list_phrase);
  if (!list_header || list_header->size() > 255 + 11)
    return make_error("List-Id is longer than 255 octets");
  h += *list_header;
  if (!c.sender.feedback_id.empty()) {
    h += "Feedback-ID: " + (r.campaign.empty() ? std::string("none") : r.campaign) + ":" +
         cat.name + ":" + c.sender.feedback_id + "\r\n";
  }
  // Complaints from providers' feedback loops come to the bounce domain, beside the bounces.
  if (!c.bounces.domain.empty()) h += "CFBL-Address: fbl@" + c.bounces.domain + "; report=arf\r\n";
  h += "Content-Type: multipart/alternative; boundary=\"" + boundary + "\"\r\n";
  return h;
}

}  // namespace bulkmail
