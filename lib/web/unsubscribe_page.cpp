#include "web/unsubscribe_page.h"

#include <kainjow/mustache.hpp>

#include <map>
#include <memory>
#include <vector>

namespace bulkmail {
namespace {

namespace mstch = kainjow::mustache;

// Shared frame. {{{body}}} is already rendered (and escaped) by one of the templates below.
constexpr const char* kLayout = R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>{{title}}</title>
<style>
body{margin:0;padding:0 .75rem;background:#f4f5f7;color:#1d1f23;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main{max-width:32rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:.5rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin:0 0 1rem}
p{margin:0 0 1rem}
form{margin:0}
button{display:block;width:100%;margin:0 0 .75rem;padding:.8rem 1rem;font:inherit;font-weight:600;border-radius:.4rem;cursor:pointer}
.primary{background:#b3261e;border:1px solid #b3261e;color:#fff}
.secondary{background:#fff;border:1px solid #6b7280;color:#1d1f23}
footer{max-width:32rem;margin:0 auto 2rem;padding:0 1.5rem;color:#5f6368;font-size:.85rem}
</style>
</head>
<body>
<main>
{{{body}}}
</main>
{{#organization}}<footer>{{organization}}{{#postal_address}} &middot; {{postal_address}}{{/postal_address}}</footer>{{/organization}}
</body>
</html>
)";

constexpr const char* kConfirm = R"(<h1>Unsubscribe</h1>
<p>Do you want to stop mail from {{organization}} to <strong>{{address}}</strong>?</p>
<form method="post" action="{{token}}">
{{#all_first}}
<button class="primary" type="submit" name="scope" value="all">Stop all mail from {{organization}}</button>
<button class="secondary" type="submit" name="scope" value="category">Stop only: {{category}}</button>
{{/all_first}}
{{^all_first}}
<button class="primary" type="submit" name="scope" value="category">Stop: {{category}}</button>
<button class="secondary" type="submit" name="scope" value="all">Stop all mail from {{organization}}</button>
{{/all_first}}
</form>
<p>Nothing changes until you press a button.</p>
)";

constexpr const char* kDone = R"(<h1>You are unsubscribed</h1>
{{#all_mail}}
<p>No more mail from {{organization}} will be sent to <strong>{{address}}</strong>.</p>
{{/all_mail}}
{{^all_mail}}
<p>No more mail of this kind ({{category}}) from {{organization}} will be sent to <strong>{{address}}</strong>.</p>
{{/all_mail}}
<p>This took effect at once.</p>
{{^all_mail}}
<form method="post" action="{{token}}">
<button class="secondary" type="submit" name="scope" value="all">Stop all mail from {{organization}} as well</button>
</form>
{{/all_mail}}
)";

constexpr const char* kInvalid = R"(<h1>This link does not work</h1>
<p>The unsubscribe link is not valid. It may have been cut short when it was copied.</p>
<p>Please use the unsubscribe link in the most recent message from {{organization}}, or write to {{organization}}{{#postal_address}}, {{postal_address}}{{/postal_address}}.</p>
)";

constexpr const char* kError = R"(<h1>{{title}}</h1>
<p>{{text}}</p>
)";

// Each template is parsed once per thread: kainjow's render() is not const, so threads do not
// share a parsed template.
std::string render(const char* source, const mstch::data& data) {
  thread_local std::map<const char*, std::unique_ptr<mstch::mustache>> parsed;
  auto& tmpl = parsed[source];
  if (!tmpl) tmpl = std::make_unique<mstch::mustache>(source);
  return tmpl->render(data);
}

std::string framed(const std::string& title, const std::string& body, const PageSender* sender) {
  mstch::data d;
  d.set("title", title);
  d.set("body", body);
  if (sender) {
    d.set("organization", sender->organization);
    if (!sender->postal_address.empty()) d.set("postal_address", sender->postal_address);
  } else {
    d.set("organization", false);
  }
  return render(kLayout, d);
}

}  // namespace

namespace {

// What the confirmation and the done page both show about a link.
mstch::data link_data(const PageSender& sender, const std::string& masked_address,
                      const std::string& category_description, const std::string& token) {
  mstch::data d;
  d.set("organization", sender.organization);
  d.set("address", masked_address);
  d.set("category", category_description);
  d.set("token", token);
  return d;
}

}  // namespace

std::string unsubscribe_confirm_page(const PageSender& sender, const std::string& masked_address,
                                     const std::string& category_description,
                                     const std::string& token, bool all_first) {
  // Link scanners and people open this page far more often than anything else here, so each
  // thread renders it once per sender, category and button order, with markers where the address
  // and the token go, and then only fills those in (escaped as kainjow would).
  static constexpr char kAddress[] =
      "\x01"
      "address"
      "\x01";
  static constexpr char kToken[] =
      "\x01"
      "token"
      "\x01";
  thread_local std::map<std::string, std::vector<std::string>> skeletons;
  std::string key = sender.organization + '\0' + sender.postal_address + '\0' +
                    category_description + '\0' + (all_first ? 'a' : 'c');
  auto& pieces = skeletons[key];
  if (pieces.empty()) {
    mstch::data d = link_data(sender, kAddress, category_description, kToken);
    d.set("all_first", all_first);
    std::string page = framed("Unsubscribe - " + sender.organization, render(kConfirm, d), &sender);
    // Pieces alternate: text, marker, text, marker, ..., text.
    std::size_t pos = 0;
    while (true) {
      std::size_t a = page.find(kAddress, pos), t = page.find(kToken, pos);
      std::size_t next = std::min(a, t);
      if (next == std::string::npos) break;
      pieces.push_back(page.substr(pos, next - pos));
      pieces.push_back(next == a ? kAddress : kToken);
      pos = next + (next == a ? sizeof kAddress : sizeof kToken) - 1;
    }
    pieces.push_back(page.substr(pos));
  }
  std::string address_html = mstch::html_escape<std::string>(masked_address);
  std::string token_html = mstch::html_escape<std::string>(token);
  std::string out;
  out.reserve(pieces.size() * 64 + 2048);
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (i % 2 == 0) {
      out += pieces[i];
    } else {
      out += pieces[i] == kAddress ? address_html : token_html;
    }
  }
  return out;
}

std::string unsubscribe_done_page(const PageSender& sender, const std::string& masked_address,
                                  const std::string& category_description, bool all_mail,
                                  const std::string& token) {
  mstch::data d = link_data(sender, masked_address, category_description, token);
  d.set("all_mail", all_mail);
  return framed("Unsubscribed - " + sender.organization, render(kDone, d), &sender);
}

std::string unsubscribe_invalid_page(const PageSender& sender) {
  mstch::data d;
  d.set("organization", sender.organization);
  if (!sender.postal_address.empty()) d.set("postal_address", sender.postal_address);
  return framed("Link not valid - " + sender.organization, render(kInvalid, d), &sender);
}

std::string error_page(const std::string& title, const std::string& text) {
  mstch::data d;
  d.set("title", title);
  d.set("text", text);
  return framed(title, render(kError, d), nullptr);
}

}  // namespace bulkmail
