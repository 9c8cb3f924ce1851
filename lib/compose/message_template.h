// A message template: a folder holding `subject`, `text` and `html` Mustache files, rendered with
// kainjow's mustache. Values are HTML-escaped in `html`; unescaped tags ({{{x}}}, {{&x}}) are
// refused there, as are partials and delimiter changes everywhere. A variable the message does
// not supply is an error naming it, never a silent blank.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "base/result.h"
#include "compose/vars.h"

namespace bulkmail {

struct RenderedParts {
  std::string subject;  // one line
  std::string text;
  std::string html;
};

class MessageTemplate {
 public:
  // Reads and compiles the three files in `dir`. The error names the file and what is wrong.
  static Result<std::shared_ptr<MessageTemplate>> load(const std::filesystem::path& dir);
  ~MessageTemplate();

  // A template of the same text, compiled anew from what load() read (no file is read again), for
  // another thread to render with.
  std::shared_ptr<MessageTemplate> clone() const;

  // Renders every part with the message's variables and bulkmail's built-ins (which win over a
  // variable of the same name). Not thread-safe: each thread renders with its own loaded
  // templates.
  Result<RenderedParts> render(const Vars& values, const Vars& builtins = {}) const;

  // True when the part's template places both the unsubscribe link and the postal address itself,
  // so bulkmail adds no footer to it.
  bool text_places_compliance() const { return text_places_; }
  bool html_places_compliance() const { return html_places_; }

  const std::string& name() const { return name_; }

 private:
  struct Part;
  MessageTemplate() = default;
  std::string name_;
  std::unique_ptr<Part> subject_, text_, html_;
  bool text_places_ = false;
  bool html_places_ = false;
};

}  // namespace bulkmail
