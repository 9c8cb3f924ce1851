// The pages a recipient sees when they follow an opt-out link: plain HTML and CSS, no JavaScript,
// nothing loaded from elsewhere, readable on a phone. Every value is HTML-escaped (kainjow
// mustache). The address appears only masked: whoever holds a forwarded link learns no more.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bulkmail {

struct Config;

struct PageSender {
  std::string organization;
  std::string postal_address;
};

// The opt-out pages of one config, for its sender and its categories. Link scanners and people
// open these pages far more often than anything else the webhook serves, so each is rendered once,
// when the object is built, with markers where the address and the token go; a request only fills
// those in (escaped as kainjow would).
//
// Built from a config and replaced with it: the webhook holds one per config it loads, so nothing
// rendered for an older config (an organization's old name) outlives a reload. Immutable once
// built: threads share one without a lock.
class UnsubscribePages {
 public:
  // The pages of `config`'s sender and of each of its categories' descriptions.
  explicit UnsubscribePages(const Config& config);
  UnsubscribePages(PageSender sender, const std::vector<std::string>& category_descriptions);

  // GET <unsubscribe path>/<token>: what the link is for and two buttons that POST back to the
  // same link: stop this category, or stop all mail. `all_first` when the link asked for all mail
  // (the footer's "all mail" link), so that choice comes first. A description the object was not
  // built with (a category since removed from the config) renders the page afresh: slower, and
  // the same page.
  std::string confirm(std::string_view masked_address, const std::string& category_description,
                      std::string_view token, bool all_first) const;

  // After the POST: what was stopped. A category opt-out offers stopping all mail as well.
  std::string done(std::string_view masked_address, const std::string& category_description,
                   bool all_mail, std::string_view token) const;

  // A link that is not valid: nothing says why (forged, truncated or expired look the same).
  std::string invalid() const { return invalid_; }

 private:
  // A page rendered with a marker in each place a per-request value goes, cut at the markers.
  class Skeleton {
   public:
    static constexpr std::size_t kMaxSlots = 2;
    Skeleton() = default;
    // Cuts `page` at every occurrence of each of `markers`; a marker's index is its slot.
    Skeleton(const std::string& page, std::initializer_list<std::string_view> markers);
    // The page with each slot's marker replaced by its value in `values`, HTML-escaped.
    std::string fill(std::initializer_list<std::string_view> values) const;

   private:
    std::vector<std::string> text_;   // the text between the slots: one more than slots_
    std::vector<std::size_t> slots_;  // the slot after each text_ but the last
    std::size_t text_size_ = 0;       // all of text_
  };
  // The pages that show a link: confirm and done, each indexed by all_first / all_mail.
  struct LinkPages {
    std::array<Skeleton, 2> confirm;
    std::array<Skeleton, 2> done;
  };
  friend std::string error_page(const std::string& title, const std::string& text);

  // The pages for `category_description`: this object's, or else rendered into `fresh`.
  const LinkPages& link_pages(const std::string& category_description, LinkPages& fresh) const;
  // error_page's, with markers for its title and text.
  static Skeleton error_skeleton();

  PageSender sender_;
  std::map<std::string, LinkPages, std::less<>> by_description_;
  std::string invalid_;
};

// Any other error a browser may see (unknown page, wrong method, too large, busy). It names no
// sender, so it depends on no config.
std::string error_page(const std::string& title, const std::string& text);

}  // namespace bulkmail
