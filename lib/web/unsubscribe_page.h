// The pages a recipient sees when they follow an opt-out link: plain HTML and CSS, no JavaScript,
// nothing loaded from elsewhere, readable on a phone. Every value is HTML-escaped (kainjow
// mustache). The address appears only masked: whoever holds a forwarded link learns no more.
#pragma once

#include <string>

namespace bulkmail {

struct PageSender {
  std::string organization;
  std::string postal_address;
};

// GET <unsubscribe path>/<token>: what the link is for and two buttons that POST back to the
// same link: stop this category, or stop all mail. `all_first` when the link asked for all mail
// (the footer's "all mail" link), so that choice comes first.
std::string unsubscribe_confirm_page(const PageSender& sender, const std::string& masked_address,
                                     const std::string& category_description,
                                     const std::string& token, bool all_first);

// After the POST: what was stopped. A category opt-out offers stopping all mail as well.
std::string unsubscribe_done_page(const PageSender& sender, const std::string& masked_address,
                                  const std::string& category_description, bool all_mail,
                                  const std::string& token);

// A link that is not valid: nothing says why (forged, truncated or expired look the same).
std::string unsubscribe_invalid_page(const PageSender& sender);

// Any other error a browser may see (unknown page, wrong method, too large, busy).
std::string error_page(const std::string& title, const std::string& text);

}  // namespace bulkmail
