#include "compose/message_template.h"

#include <kainjow/mustache.hpp>

#include <vector>

#include "base/read_file.h"
#include "base/text.h"

namespace bulkmail {
namespace fs = std::filesystem;
namespace mstch = kainjow::mustache;

namespace {

// The names a template uses as values ({{x}}, {{{x}}}, {{&x}}), and whether any is unescaped.
struct TagScan {
  std::set<std::string> variables;
  std::string problem;
};

TagScan scan_tags(const std::string& src, bool html) {
  TagScan scan;
  std::size_t pos = 0;
  while ((pos = src.find("{{", pos)) != std::string::npos) {
    bool triple = src.compare(pos, 3, "{{{") == 0;
    std::size_t start = pos + (triple ? 3 : 2);
    std::size_t end = src.find(triple ? "}}}" : "}}", start);
    if (end == std::string::npos) return scan;  // kainjow reports the unclosed tag
    std::string_view tag = trim(std::string_view(src).substr(start, end - start));
    pos = end + (triple ? 3 : 2);
    if (tag.empty()) continue;
    char kind = triple ? '{' : tag.front();
    if (kind == '=') {
      scan.problem = "changing delimiters ({{=...=}}) is not supported";
    } else if (kind == '>') {
      scan.problem = "partials ({{>...}}) are not supported";
    } else if (kind == '#' || kind == '^' || kind == '/' || kind == '!') {
      continue;
    } else if (kind == '{' || kind == '&') {
      if (html) {
        scan.problem = "unescaped tag for '" +
                       std::string(trim(kind == '&' ? tag.substr(1) : tag)) +
                       "': values in html must be escaped ({{name}})";
      }
      scan.variables.emplace(trim(kind == '&' ? tag.substr(1) : tag));
    } else {
      scan.variables.emplace(tag);
    }
  }
  return scan;
}

// Resolves names from the section stack, then the message's values; remembers what was missing.
class ValuesContext final : public mstch::basic_context<std::string> {
 public:
  ValuesContext(const mstch::object& values, std::vector<std::string>& missing)
      : values_(values), missing_(missing) {}
  void push(const mstch::data* d) override { stack_.push_back(d); }
  void pop() override { stack_.pop_back(); }
  const mstch::data* get(const std::string& name) const override {
    if (name == ".") return stack_.empty() ? nullptr : stack_.back();
    for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {
      if (const mstch::data* d = (*it)->get(name)) return d;
    }
    if (auto it = values_.find(name); it != values_.end()) return &it->second;
    missing_.push_back(name);
    return nullptr;
  }
  const mstch::data* get_partial(const std::string&) const override { return nullptr; }

 private:
  const mstch::object& values_;
  std::vector<std::string>& missing_;
  std::vector<const mstch::data*> stack_;
};

// kainjow writes its output to anything with `<<`: straight into the result, not through an
// ostringstream (whose construction alone costs a microsecond a part).
struct AppendTo {
  std::string& out;
  AppendTo& operator<<(const std::string& s) {
    out += s;
    return *this;
  }
};

Result<std::string> read_template_file(const fs::path& p) {
  auto s = read_file(p);
  if (s && !is_valid_utf8(*s)) return make_error(p.string() + ": not valid UTF-8");
  return s;
}

}  // namespace

struct MessageTemplate::Part {
  std::string file;
  std::string source;  // the text load() checked and compiled, for clone()
  bool html = false;
  std::unique_ptr<mstch::mustache> tmpl;
  std::set<std::string> variables;
  std::size_t size_hint = 0;  // room for the rendered part: the source and some
};

MessageTemplate::~MessageTemplate() = default;

namespace {
std::unique_ptr<mstch::mustache> compile(const std::string& source, bool html) {
  auto t = std::make_unique<mstch::mustache>(source);
  if (html) {
    t->set_custom_escape([](const std::string& s) { return html_escape_lines(s); });
  } else {
    t->set_custom_escape([](const std::string& s) { return s; });
  }
  return t;
}
}  // namespace

std::shared_ptr<MessageTemplate> MessageTemplate::clone() const {
  std::shared_ptr<MessageTemplate> t(new MessageTemplate());
  t->name_ = name_;
  t->text_places_ = text_places_;
  t->html_places_ = html_places_;
  auto copy = [](const Part& p) {
    auto part = std::make_unique<Part>();
    part->file = p.file;
    part->source = p.source;
    part->html = p.html;
    part->variables = p.variables;
    part->size_hint = p.size_hint;
    part->tmpl = compile(part->source, part->html);
    return part;
  };
  t->subject_ = copy(*subject_);
  t->text_ = copy(*text_);
  t->html_ = copy(*html_);
  return t;
}

Result<std::shared_ptr<MessageTemplate>> MessageTemplate::load(const fs::path& dir) {
  std::shared_ptr<MessageTemplate> t(new MessageTemplate());
  t->name_ = dir.filename().string();
  auto load_part = [&](const char* name, bool html) -> Result<std::unique_ptr<Part>> {
    auto src = read_template_file(dir / name);
    if (!src) return src.error();
    auto part = std::make_unique<Part>();
    part->file = (dir / name).string();
    if (std::string_view(name) == "subject" &&
        trim(*src).find_first_of("\r\n") != std::string_view::npos) {
      // A header is one line: a subject template whose text spans lines (a section on a line of
      // its own included) could render two, whatever the values.
      return make_error(part->file +
                        ": the subject template spans more than one line; a mail header is one "
                        "line");
    }
    TagScan scan = scan_tags(*src, html);
    if (!scan.problem.empty()) return make_error(part->file + ": " + scan.problem);
    part->variables = std::move(scan.variables);
    part->size_hint = src->size() + 512;
    part->source = std::move(*src);
    part->html = html;
    part->tmpl = compile(part->source, html);
    if (!part->tmpl->is_valid()) return make_error(part->file + ": " + part->tmpl->error_message());
    return part;
  };
  auto subject = load_part("subject", false);
  auto text = load_part("text", false);
  auto html = load_part("html", true);
  // Every part's problem at once, one a line.
  std::string problems;
  for (const auto* part : {&subject, &text, &html}) {
    if (!*part) problems += (problems.empty() ? "" : "\n") + part->error().message;
  }
  if (!problems.empty()) return make_error(problems);
  auto places = [](const Part& p) {
    return (p.variables.count("unsubscribe_url") || p.variables.count("unsubscribe_all_url")) &&
           p.variables.count("postal_address");
  };
  t->text_places_ = places(**text);
  t->html_places_ = places(**html);
  t->subject_ = std::move(subject.value());
  t->text_ = std::move(text.value());
  t->html_ = std::move(html.value());
  return t;
}

Result<RenderedParts> MessageTemplate::render(const Vars& values, const Vars& builtins) const {
  mstch::object data;
  data.reserve(builtins.size() + values.size());
  for (const auto& [k, v] : builtins) data.emplace(k, mstch::data(v));
  for (const auto& [k, v] : values) data.emplace(k, mstch::data(v));  // no effect on a built-in
  // A value reaches a header only through the subject: one used there must be one line.
  for (const auto& name : subject_->variables) {
    auto v = values.find(name);
    if (v != values.end() && v->second.find_first_of("\r\n") != std::string::npos) {
      return make_error("variable '" + name + "' holds a line break, and the subject of template " +
                        name_ + " uses it: a mail header is one line");
    }
  }
  RenderedParts out;
  for (auto [part, dest] : {std::pair{subject_.get(), &out.subject},
                            std::pair{text_.get(), &out.text}, std::pair{html_.get(), &out.html}}) {
    std::vector<std::string> missing;
    ValuesContext ctx(data, missing);
    dest->reserve(part->size_hint);
    AppendTo sink{*dest};
    part->tmpl->render(ctx, sink);
    for (const auto& name : missing) {
      if (part->variables.count(name)) {
        return make_error("template " + name_ + ": variable '" + name + "' is missing (used in " +
                          fs::path(part->file).filename().string() + ")");
      }
    }
    if (!part->tmpl->is_valid()) return make_error(part->file + ": " + part->tmpl->error_message());
  }
  std::string_view subject = trim(out.subject);
  if (subject.empty()) return make_error("template " + name_ + ": the subject renders empty");
  if (subject.find_first_of("\r\n") != std::string_view::npos) {
    return make_error("template " + name_ + ": the subject must render to a single line");
  }
  out.subject = std::string(subject);
  return out;
}

}  // namespace bulkmail
