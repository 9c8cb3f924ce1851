#include "base/json_strict.h"

#include <unordered_set>
#include <utility>
#include <vector>

namespace bulkmail {
namespace {

using json = nlohmann::json;

// Builds the document as nlohmann's own parser does, and remembers the keys of every open object
// so that a repeated one stops the parse at once.
class StrictBuilder final : public nlohmann::json_sax<json> {
 public:
  json& root() { return root_; }
  const std::string& duplicate() const { return duplicate_; }
  bool found_duplicate() const { return found_duplicate_; }
  const std::string& parse_problem() const { return parse_problem_; }

  bool null() override { return put(nullptr); }
  bool boolean(bool v) override { return put(v); }
  bool number_integer(number_integer_t v) override { return put(v); }
  bool number_unsigned(number_unsigned_t v) override { return put(v); }
  bool number_float(number_float_t v, const string_t&) override { return put(v); }
  bool string(string_t& v) override { return put(std::move(v)); }
  bool binary(binary_t& v) override { return put(json::binary(std::move(v))); }  // not in JSON text

  bool start_object(std::size_t) override { return open(json::object()); }
  bool key(string_t& k) override {
    Frame& f = frames_.back();
    if (!f.keys.insert(k).second) {
      found_duplicate_ = true;
      duplicate_ = join(f.path, k);
      return false;
    }
    f.key = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_array() override { return close(); }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    std::string why = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " prefix: the rest says where and why.
    if (std::size_t p = why.find("] "); why.rfind("[json.exception.", 0) == 0 && p != why.npos)
      why.erase(0, p + 2);
    parse_problem_ = "not valid JSON: " + why;
    return false;
  }

 private:
  // An open object or array.
  struct Frame {
    json* node;                            // in its parent, which does not change while it is open
    std::string path;                      // how the top reaches it: "", "vars", "items[2]"
    std::unordered_set<std::string> keys;  // an object's keys so far
    std::string key;                       // an object's key whose value comes next
  };

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  // Puts a value where the document is at: the top, the open array's end or the current key.
  json* place(json v) {
    if (frames_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Frame& f = frames_.back();
    if (f.node->is_array()) {
      f.node->push_back(std::move(v));
      return &f.node->back();
    }
    json& slot = (*f.node)[f.key];
    slot = std::move(v);
    return &slot;
  }

  bool put(json v) {
    place(std::move(v));
    return true;
  }

  bool open(json container) {
    std::string path;
    if (!frames_.empty()) {
      const Frame& f = frames_.back();
      path = f.node->is_array() ? f.path + "[" + std::to_string(f.node->size()) + "]"
                                : join(f.path, f.key);
    }
    json* node = place(std::move(container));
    frames_.push_back(Frame{node, std::move(path), {}, {}});
    return true;
  }

  bool close() {
    frames_.pop_back();
    return true;
  }

  json root_;
  std::vector<Frame> frames_;
  std::string duplicate_;
  bool found_duplicate_ = false;
  std::string parse_problem_;
};

}  // namespace

Result<nlohmann::json> parse_json_strict(std::string_view text) {
  StrictBuilder builder;
  // strict = true: nothing but whitespace may follow the value.
  if (json::sax_parse(text, &builder, json::input_format_t::json, /*strict=*/true)) {
    return std::move(builder.root());
  }
  if (builder.found_duplicate()) {
    return Error{"duplicate key \"" + builder.duplicate() + "\"", builder.duplicate()};
  }
  return make_error(builder.parse_problem().empty() ? "not valid JSON" : builder.parse_problem());
}

}  // namespace bulkmail
