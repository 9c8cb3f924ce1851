#include "web/unsubscribe_page.h"

#include <kainjow/mustache.hpp>

#include <utility>

#include "config/config.h"

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

// Markers where a per-request value goes: no rendered value holds \x01, and escaping leaves it.
constexpr std::string_view kAddress =
    "\x01"
    "address"
    "\x01";
constexpr std::string_view kToken =
    "\x01"
    "token"
    "\x01";

// The templates, parsed. kainjow's render() is not const: a set is parsed where it is used (while
// building pages), never shared between threads.
struct Templates {
  mstch::mustache layout{kLayout};
  mstch::mustache confirm{kConfirm};
  mstch::mustache done{kDone};
  mstch::mustache invalid{kInvalid};
  mstch::mustache error{kError};
};

std::string framed(Templates& t, const std::string& title, const std::string& body,
                   const PageSender* sender) {
  mstch::data d;
  d.set("title", title);
  d.set("body", body);
  if (sender) {
    d.set("organization", sender->organization);
    if (!sender->postal_address.empty()) d.set("postal_address", sender->postal_address);
  } else {
    d.set("organization", false);
  }
  return t.layout.render(d);
}

// What the confirmation and the done page both show about a link, with markers for the address
// and the token.
mstch::data link_data(const PageSender& sender, const std::string& category_description) {
  mstch::data d;
  d.set("organization", sender.organization);
  d.set("address", std::string(kAddress));
  d.set("category", category_description);
  d.set("token", std::string(kToken));
  return d;
}

std::string confirm_page(Templates& t, const PageSender& sender,
                         const std::string& category_description, bool all_first) {
  mstch::data d = link_data(sender, category_description);
  d.set("all_first", all_first);
  return framed(t, "Unsubscribe - " + sender.organization, t.confirm.render(d), &sender);
}

std::string done_page(Templates& t, const PageSender& sender,
                      const std::string& category_description, bool all_mail) {
  mstch::data d = link_data(sender, category_description);
  d.set("all_mail", all_mail);
  return framed(t, "Unsubscribed - " + sender.organization, t.done.render(d), &sender);
}

}  // namespace

UnsubscribePages::Skeleton::Skeleton(const std::string& page,
                                     std::initializer_list<std::string_view> markers) {
  std::size_t pos = 0;
  while (true) {
    std::size_t next = std::string::npos, slot = 0;
    for (std::size_t i = 0; i < markers.size(); ++i) {
      std::size_t at = page.find(markers.begin()[i], pos);
      if (at < next) {
        next = at;
        slot = i;
      }
    }
    if (next == std::string::npos) break;
    text_.push_back(page.substr(pos, next - pos));
    slots_.push_back(slot);
    pos = next + markers.begin()[slot].size();
  }
  text_.push_back(page.substr(pos));
  for (const std::string& t : text_) text_size_ += t.size();
}

std::string UnsubscribePages::Skeleton::fill(std::initializer_list<std::string_view> values) const {
  std::array<std::string, kMaxSlots> escaped;
  for (std::size_t i = 0; i < values.size() && i < kMaxSlots; ++i)
    escaped[i] = mstch::html_escape<std::string>(std::string(values.begin()[i]));
  std::size_t size = text_size_;
  for (std::size_t slot : slots_) size += slot < kMaxSlots ? escaped[slot].size() : 0;
  std::string out;
  out.reserve(size);
  for (std::size_t i = 0; i < text_.size(); ++i) {
    out += text_[i];
    if (i < slots_.size() && slots_[i] < kMaxSlots) out += escaped[slots_[i]];
  }
  return out;
}

UnsubscribePages::UnsubscribePages(const Config& config)
    : UnsubscribePages(PageSender{config.sender.organization, config.sender.postal_address}, [&] {
        std::vector<std::string> descriptions;
        for (const auto& entry : config.categories)
          descriptions.push_back(entry.second.description);
        return descriptions;
      }()) {}

UnsubscribePages::UnsubscribePages(PageSender sender,
                                   const std::vector<std::string>& category_descriptions)
    : sender_(std::move(sender)) {
  Templates t;
  for (const std::string& description : category_descriptions) {
    auto [at, added] = by_description_.try_emplace(description);
    if (!added) continue;  // two categories described alike
    LinkPages& pages = at->second;
    for (bool all : {false, true}) {
      pages.confirm[all] = Skeleton(confirm_page(t, sender_, description, all), {kAddress, kToken});
      pages.done[all] = Skeleton(done_page(t, sender_, description, all), {kAddress, kToken});
    }
  }
  mstch::data d;
  d.set("organization", sender_.organization);
  if (!sender_.postal_address.empty()) d.set("postal_address", sender_.postal_address);
  invalid_ = framed(t, "Link not valid - " + sender_.organization, t.invalid.render(d), &sender_);
}

const UnsubscribePages::LinkPages& UnsubscribePages::link_pages(
    const std::string& category_description, LinkPages& fresh) const {
  auto it = by_description_.find(category_description);
  if (it != by_description_.end()) return it->second;
  // A category the config no longer has (its links live on in delivered mail): rendered for this
  // request alone, so that nothing here changes once built.
  Templates t;
  for (bool all : {false, true}) {
    fresh.confirm[all] =
        Skeleton(confirm_page(t, sender_, category_description, all), {kAddress, kToken});
    fresh.done[all] =
        Skeleton(done_page(t, sender_, category_description, all), {kAddress, kToken});
  }
  return fresh;
}

std::string UnsubscribePages::confirm(std::string_view masked_address,
                                      const std::string& category_description,
                                      std::string_view token, bool all_first) const {
  LinkPages fresh;
  return link_pages(category_description, fresh).confirm[all_first].fill({masked_address, token});
}

std::string UnsubscribePages::done(std::string_view masked_address,
                                   const std::string& category_description, bool all_mail,
                                   std::string_view token) const {
  LinkPages fresh;
  return link_pages(category_description, fresh).done[all_mail].fill({masked_address, token});
}

namespace {

// Markers for the error page's title and text.
constexpr std::string_view kTitle =
    "\x01"
    "title"
    "\x01";
constexpr std::string_view kText =
    "\x01"
    "text"
    "\x01";

}  // namespace

UnsubscribePages::Skeleton UnsubscribePages::error_skeleton() {
  Templates t;
  mstch::data d;
  d.set("title", std::string(kTitle));
  d.set("text", std::string(kText));
  return Skeleton(framed(t, std::string(kTitle), t.error.render(d), nullptr), {kTitle, kText});
}

std::string error_page(const std::string& title, const std::string& text) {
  // Rendered once for the whole process (the page depends on no config) and never changed after:
  // threads share it without a lock.
  static const UnsubscribePages::Skeleton skeleton = UnsubscribePages::error_skeleton();
  return skeleton.fill({title, text});
}

}  // namespace bulkmail
