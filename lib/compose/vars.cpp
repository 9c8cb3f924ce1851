#include "compose/vars.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "base/text.h"

namespace bulkmail {
namespace {
constexpr std::size_t kMaxValue = 8 * 1024;
constexpr std::size_t kMaxVars = 100;
}  // namespace

bool is_builtin_var(std::string_view name) {
  return std::find(kBuiltinVars.begin(), kBuiltinVars.end(), name) != kBuiltinVars.end();
}

Result<void> check_var_name(std::string_view name) {
  if (name.empty()) return make_error("a variable name is empty");
  if (name.size() > 64) return make_error("variable name is longer than 64 characters");
  auto is_alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!is_alpha(name.front()))
    return make_error("variable '" + std::string(name) + "' must start with a letter or '_'");
  for (char c : name) {
    if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '-') {
      return make_error("variable name '" + std::string(name) +
                        "' may hold only letters, digits, '_' and '-'");
    }
  }
  if (is_builtin_var(name)) {
    return make_error("variable '" + std::string(name) +
                      "' is filled in by bulkmail and cannot be set");
  }
  return {};
}

Result<void> check_var_value(std::string_view value) {
  if (value.size() > kMaxValue) return make_error("is longer than 8 KiB");
  return check_text_value(value);
}

Result<std::pair<std::string, std::string>> parse_var_assignment(std::string_view arg) {
  auto eq = arg.find('=');
  if (eq == std::string_view::npos) return make_error("--var takes KEY=VALUE, got no '='");
  std::string name(arg.substr(0, eq));
  std::string value(arg.substr(eq + 1));
  if (auto checked = check_var_name(name); !checked) return checked.error();
  if (auto checked = check_var_value(value); !checked)
    return make_error("variable '" + name + "' " + checked.error().message);
  return std::pair{std::move(name), std::move(value)};
}

Result<std::string> vars_to_json(const Vars& vars) {
  if (vars.size() > kMaxVars) return make_error("more than 100 variables");
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : vars) {
    // The field at fault is the variable ("vars.first_name"), for an API to name.
    if (auto checked = check_var_name(k); !checked)
      return Error{checked.error().message, "vars." + k};
    if (auto checked = check_var_value(v); !checked)
      return Error{"variable '" + k + "' " + checked.error().message, "vars." + k};
    j[k] = v;
  }
  return j.dump();
}

namespace {

// Reads {"name": "text", ...} straight into the map, without building a JSON document first.
class VarsReader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit VarsReader(Vars& out) : out_(out) {}
  // Whether what was read is an object of text; the error names the first value that is not.
  Result<void> result() const {
    if (problem_.empty()) return {};
    return make_error(problem_);
  }

  bool start_object(std::size_t) override {
    if (depth_ != 0) return fail_value();
    depth_ = 1;
    return true;
  }
  bool end_object() override { return --depth_ == 0; }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool string(string_t& v) override {
    if (depth_ != 1) return fail_shape();
    out_.insert_or_assign(std::move(key_), std::move(v));
    return true;
  }
  bool null() override { return fail_value(); }
  bool boolean(bool) override { return fail_value(); }
  bool number_integer(number_integer_t) override { return fail_value(); }
  bool number_unsigned(number_unsigned_t) override { return fail_value(); }
  bool number_float(number_float_t, const string_t&) override { return fail_value(); }
  bool binary(binary_t&) override { return fail_value(); }
  bool start_array(std::size_t) override { return fail_value(); }
  bool end_array() override { return false; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return fail_shape();
  }

 private:
  bool fail_shape() {
    if (problem_.empty()) problem_ = "the stored variables are not a JSON object";
    return false;
  }
  bool fail_value() {
    if (depth_ != 1) return fail_shape();
    problem_ = "the stored variable '" + key_ + "' is not text";
    return false;
  }

  Vars& out_;
  std::string key_;
  std::string problem_;
  int depth_ = 0;
};

}  // namespace

Result<Vars> vars_from_json(std::string_view json) {
  Vars vars;
  VarsReader reader(vars);
  bool parsed = nlohmann::json::sax_parse(json, &reader);
  if (auto read = reader.result(); !read) return read.error();
  if (!parsed) return make_error("the stored variables are not a JSON object");
  return vars;
}

std::optional<std::string> json_scalar_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number() || value.is_boolean()) return value.dump();
  return std::nullopt;
}

}  // namespace bulkmail
