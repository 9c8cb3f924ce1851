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

std::string var_name_problem(std::string_view name) {
  if (name.empty()) return "a variable name is empty";
  if (name.size() > 64) return "variable name is longer than 64 characters";
  auto is_alpha = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!is_alpha(name.front()))
    return "variable '" + std::string(name) + "' must start with a letter or '_'";
  for (char c : name) {
    if (!is_alpha(c) && !(c >= '0' && c <= '9') && c != '-') {
      return "variable name '" + std::string(name) + "' may hold only letters, digits, '_' and '-'";
    }
  }
  if (is_builtin_var(name)) {
    return "variable '" + std::string(name) + "' is filled in by bulkmail and cannot be set";
  }
  return "";
}

std::string var_value_problem(std::string_view value) {
  if (value.size() > kMaxValue) return "is longer than 8 KiB";
  return text_value_problem(value);
}

Result<std::pair<std::string, std::string>> parse_var_assignment(std::string_view arg) {
  auto eq = arg.find('=');
  if (eq == std::string_view::npos) return make_error("--var takes KEY=VALUE, got no '='");
  std::string name(arg.substr(0, eq));
  std::string value(arg.substr(eq + 1));
  if (auto p = var_name_problem(name); !p.empty()) return make_error(p);
  if (auto p = var_value_problem(value); !p.empty())
    return make_error("variable '" + name + "' " + p);
  return std::pair{std::move(name), std::move(value)};
}

Result<std::string> vars_to_json(const Vars& vars) {
  if (vars.size() > kMaxVars) return make_error("more than 100 variables");
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : vars) {
    if (auto p = var_name_problem(k); !p.empty()) return make_error(p);
    if (auto p = var_value_problem(v); !p.empty()) return make_error("variable '" + k + "' " + p);
    j[k] = v;
  }
  return j.dump();
}

namespace {

// Reads {"name": "text", ...} straight into the map, without building a JSON document first.
class VarsReader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit VarsReader(Vars& out) : out_(out) {}
  const std::string& problem() const { return problem_; }

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
  if (!nlohmann::json::sax_parse(json, &reader) || !reader.problem().empty()) {
    return make_error(reader.problem().empty() ? "the stored variables are not a JSON object"
                                               : reader.problem());
  }
  return vars;
}

std::optional<std::string> json_scalar_text(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number() || value.is_boolean()) return value.dump();
  return std::nullopt;
}

}  // namespace bulkmail
