/// @file schema.h
/// @brief One declarative parameter schema per component (method, metric, environment,
/// experiment): each parameter is declared once, and parsing, validation, the resolved record,
/// the listings (`attrlab methods|metrics|envs`, text and `--json`) and `--help` derive from it.
///
/// A component keeps its settings in a `Params` struct whose default member initializers are the
/// defaults (the only place a default is written). Its schema names each member once, with its
/// type (deduced from the member), range or choices, one line of help and the paper and equation
/// it comes from:
///
///     const lab::Schema<Params>& Params::schema() {
///       static const auto s = lab::Schema<Params>()
///           .field("steps", &Params::steps, {.range = lab::at_least(1), .help = "quadrature points",
///                                            .source = "Sundararajan et al. 2017, eq. 3"})
///           .field("quadrature", &Params::quadrature, {.choices = {"riemann-left", "gauss-legendre"}});
///       return s;
///     }
///
/// Keys are spelled in lower case with words joined by '-' (`pixels-per-step`), like every name
/// of attrlab; Options::finish() refuses the underscore spelling with a hint naming the right key.
///
/// Values arrive as text (`-p key=value`, `-o key=value`, or a JSON config through
/// Options::from_json) and are read with the member's type: integers, finite numbers, booleans
/// (on/off, true/false, yes/no, 1/0), one of the choices, paths, comma-separated lists. A value
/// that does not parse or lies outside its range is refused in one line:
/// `-p steps=0: must be an integer ≥ 1`. A `std::optional` member is a default derived from other
/// settings or from the data (`derived` says how); `auto` asks for it explicitly.
/// Tested in tests/lab/test_schema.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/core/error.h"
#include "lab/core/options.h"

namespace lab {

/// The type of a parameter as listed to users ("int", "float", ...; see type_name()).
enum class ParamType { kInt, kFloat, kBool, kEnum, kString, kPath, kIntList, kFloatList, kStringList };
/// "int", "float", "bool", "enum", "string", "path", "int-list", "float-list", "string-list".
const char* type_name(ParamType type);

/// An interval of allowed numbers (each end optional, open or closed).
struct Range {
  std::optional<double> min, max;
  bool min_open = false, max_open = false;
  bool contains(double value) const;
  /// "≥ 1", "> 0", "in [0, 1]", "in (0, 1]", "≤ 5", or "" when unbounded.
  std::string describe() const;
  nlohmann::json to_json() const;  ///< {"min": 1, "min-open": false, ...}, only the ends that exist
};
Range at_least(double min);
Range above(double min);
Range at_most(double max);
Range between(double min, double max);  ///< closed [min, max]

/// How a parameter is described; written with designated initializers at the declaration.
struct ParamSpec {
  Range range;                       ///< numbers, and each element of a number list
  std::vector<std::string> choices;  ///< a string (or list of strings) limited to these
  std::string help;                  ///< one line
  std::string source;                ///< paper, section or equation the parameter comes from
  std::string derived;               ///< for optional members: how the default is derived
  std::string expect;                ///< custom fields: what a value must be ("zero, background or a file")
};

/// What a user sees of one parameter (listings, `--json`, `--help`).
struct ParamDoc {
  std::string name;
  ParamType type = ParamType::kString;
  nlohmann::json default_value;  ///< typed JSON of the default; null when derived
  ParamSpec info;
  /// {"name", "type", "default", "derived"?, "min"/"max"..., "choices"?, "help", "source"?}
  nlohmann::json to_json() const;
  /// The default as `-p` takes it back: "50", "on", "0.5", "a,b", or "auto" when derived.
  std::string default_text() const;
  /// "an integer ≥ 1", "one of a|b", "on or off", ...: what a value must be.
  std::string expected() const;
};

/// The text `-p` takes for a JSON value: strings as is, booleans on/off, arrays comma-joined,
/// numbers in their shortest exact form, null as "auto".
std::string option_text(const nlohmann::json& value);

/// Throws lab::Error(kParameter) "FLAG NAME=TEXT: must be WHAT".
[[noreturn]] void fail_value(const std::string& flag, const std::string& name, const std::string& text,
                             const std::string& what);

/// Whether `key` follows the spelling convention: lower-case letters and digits, words joined by
/// single '-' (dots allowed between words for dotted paths).
bool is_key_spelling(const std::string& key);

/// How a member of a type the schema does not know is read from text and recorded: `parse`
/// gives nullopt when the text does not fit (`expect` says what fits), `show` gives typed JSON
/// whose option_text() `parse` reads back.
template <class T>
struct Codec {
  ParamType type = ParamType::kString;
  std::function<std::optional<T>(const std::string&)> parse;
  std::function<nlohmann::json(const T&)> show;
  std::string expect;
};

/// A full 64-bit unsigned seed: an integer in 0..2^64−1 (18446744073709551615), recorded as a
/// JSON unsigned integer. The `seed` keys of environments and metrics use it.
Codec<uint64_t> seed_codec();

namespace schema_detail {

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

/// Parsers of one text value; false when it does not parse.
bool parse_integer(const std::string& text, int64_t& out);
bool parse_number(const std::string& text, double& out);
bool parse_boolean(const std::string& text, bool& out);
std::vector<std::string> split_list(const std::string& text);

/// The ParamType of a plain member type T (no optional).
template <class T>
constexpr ParamType type_of() {
  if constexpr (std::is_same_v<T, bool>) return ParamType::kBool;
  else if constexpr (std::is_integral_v<T>) return ParamType::kInt;
  else if constexpr (std::is_floating_point_v<T>) return ParamType::kFloat;
  else if constexpr (std::is_same_v<T, std::string>) return ParamType::kString;
  else if constexpr (is_vector<T>::value) {
    using E = typename T::value_type;
    if constexpr (std::is_integral_v<E>) return ParamType::kIntList;
    else if constexpr (std::is_floating_point_v<E>) return ParamType::kFloatList;
    else return ParamType::kStringList;
  } else {
    static_assert(sizeof(T) == 0, "lab::Schema::field: use choice() for enums and custom() for other types");
  }
}

/// Parses `text` into T, checking the range and choices; false when it does not fit.
template <class T>
bool parse_value(const std::string& text, const ParamSpec& info, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    return parse_boolean(text, out);
  } else if constexpr (std::is_integral_v<T>) {
    int64_t v = 0;
    if (!parse_integer(text, v) || !info.range.contains(static_cast<double>(v))) return false;
    if constexpr (std::is_signed_v<T>) {
      if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<int64_t>(std::numeric_limits<T>::max()))
        return false;
    } else {
      if (v < 0 || static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
    }
    out = static_cast<T>(v);
    return true;
  } else if constexpr (std::is_floating_point_v<T>) {
    double v = 0;
    if (!parse_number(text, v) || !info.range.contains(v)) return false;
    out = static_cast<T>(v);
    return true;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!info.choices.empty()) {
      bool found = false;
      for (const std::string& c : info.choices) found = found || c == text;
      if (!found) return false;
    }
    out = text;
    return true;
  } else {
    using E = typename T::value_type;
    T items;
    if (text.empty()) {
      out = items;
      return true;
    }
    for (const std::string& part : split_list(text)) {
      E e{};
      if (!parse_value<E>(part, info, e)) return false;
      items.push_back(std::move(e));
    }
    out = std::move(items);
    return true;
  }
}

/// The type inside std::optional, or T itself.
template <class T>
struct unwrap {
  using type = T;
};
template <class T>
struct unwrap<std::optional<T>> {
  using type = T;
};

/// How one parameter's member is read from text and recorded, whatever struct holds it: made once
/// per member type (and choice list, codec), so that each Params struct's schema adds no code of
/// its own but the offsets of its members.
struct Access {
  /// Parses `text` into the member at `member` (nullptr: only whether the text fits); false when
  /// it does not fit.
  std::function<bool(void* member, const std::string& text)> set;
  /// The member's typed JSON (null: an unresolved derived default).
  std::function<nlohmann::json(const void* member)> get;
};

/// A member of type T (bool, number, string, a vector of those, or a std::optional of any).
template <class T>
std::shared_ptr<const Access> plain_access(const ParamSpec& info) {
  using Plain = typename unwrap<T>::type;
  auto a = std::make_shared<Access>();
  a->set = [info](void* member, const std::string& text) {
    if constexpr (is_optional<T>::value) {
      if (text == "auto") {
        if (member) *static_cast<T*>(member) = std::nullopt;
        return true;
      }
    }
    Plain value{};
    if (!parse_value<Plain>(text, info, value)) return false;
    if (member) *static_cast<T*>(member) = std::move(value);
    return true;
  };
  a->get = [](const void* member) -> nlohmann::json {
    const T& value = *static_cast<const T*>(member);
    if constexpr (is_optional<T>::value) {
      return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
    } else {
      return nlohmann::json(value);
    }
  };
  return a;
}

/// An enum member M (E or std::optional<E>) written as one of `names`.
template <class E, class M>
std::shared_ptr<const Access> choice_access(std::vector<std::pair<E, std::string>> names) {
  constexpr bool optional = is_optional<M>::value;
  auto a = std::make_shared<Access>();
  a->set = [names](void* member, const std::string& text) {
    if constexpr (optional) {
      if (text == "auto") {
        if (member) *static_cast<M*>(member) = std::nullopt;
        return true;
      }
    }
    for (const auto& [value, t] : names)
      if (t == text) {
        if (member) *static_cast<M*>(member) = value;
        return true;
      }
    return false;
  };
  a->get = [names](const void* member) -> nlohmann::json {
    const M& m = *static_cast<const M*>(member);
    const E* value = nullptr;
    if constexpr (optional) {
      if (m) value = &*m;
    } else {
      value = &m;
    }
    if (value)
      for (const auto& [v, t] : names)
        if (v == *value) return t;
    return nullptr;
  };
  return a;
}

/// A member of any other type T, read and recorded by `codec`.
template <class T>
std::shared_ptr<const Access> custom_access(const Codec<T>& codec) {
  auto a = std::make_shared<Access>();
  a->set = [parse = codec.parse](void* member, const std::string& text) {
    std::optional<T> value = parse(text);
    if (!value) return false;
    if (member) *static_cast<T*>(member) = std::move(*value);
    return true;
  };
  a->get = [show = codec.show](const void* member) { return show(*static_cast<const T*>(member)); };
  return a;
}

/// The byte offset of `member` within P (P must be default-constructible, as every Params is).
template <class P, class M>
std::size_t offset_of(M P::*member) {
  const P probe{};
  return static_cast<std::size_t>(reinterpret_cast<const char*>(&(probe.*member)) -
                                  reinterpret_cast<const char*>(&probe));
}

}  // namespace schema_detail

/// One declared parameter: its documentation and how its member, `offset` bytes into the Params
/// struct, is read and recorded.
struct SchemaField {
  ParamDoc doc;
  std::size_t offset = 0;
  std::shared_ptr<const schema_detail::Access> access;
};

namespace schema_detail {

// The halves of Schema<P>'s operations that do not depend on P (schema.cpp); `p` is the P.

/// Appends `f`, refusing a key that is not spelled as keys are or is declared twice.
void add_field(std::vector<SchemaField>& fields, SchemaField f);
/// Reads every field present in `options` (marking it read) onto `p`.
void read_fields(const std::vector<SchemaField>& fields, Options& options, void* p);
/// Checks every field's value against its declaration.
void validate_fields(const std::vector<SchemaField>& fields, const void* p, const std::string& flag);
/// {name: value, ...} in declaration order.
nlohmann::json fields_json(const std::vector<SchemaField>& fields, const void* p);
/// Every field's documentation, defaults taken from `defaults`.
std::vector<ParamDoc> fields_docs(const std::vector<SchemaField>& fields, const void* defaults);
std::vector<std::string> field_names(const std::vector<SchemaField>& fields);

}  // namespace schema_detail

/// The schema of a Params struct P: an ordered list of fields, each bound to a member.
template <class P>
class Schema {
 public:
  using Field = SchemaField;
  using Check = std::function<void(const P&, const std::string& flag)>;

  /// A member of type bool, integer, floating point, std::string (with `choices`: an enum), a
  /// std::vector of those (comma lists), or a std::optional of any of them (a derived default).
  template <class T>
  Schema& field(std::string name, T P::*member, ParamSpec info = {}) {
    using Plain = typename schema_detail::unwrap<T>::type;
    Field f;
    f.doc.name = std::move(name);
    f.doc.type = schema_detail::type_of<Plain>();
    if (f.doc.type == ParamType::kString && !info.choices.empty()) f.doc.type = ParamType::kEnum;
    f.access = schema_detail::plain_access<T>(info);
    f.doc.info = std::move(info);
    f.offset = schema_detail::offset_of(member);
    return add(std::move(f));
  }

  /// A std::string member holding a file path.
  Schema& path(std::string name, std::string P::*member, ParamSpec info = {}) {
    field(std::move(name), member, std::move(info));
    fields_.back().doc.type = ParamType::kPath;
    return *this;
  }

  /// An enum member written as one of `names` ({value, "name"} pairs, in listing order).
  template <class E>
  Schema& choice(std::string name, E P::*member, std::vector<std::pair<E, std::string>> names, ParamSpec info = {}) {
    return add_choice<E>(std::move(name), member, std::move(names), std::move(info));
  }

  /// The same for a std::optional enum member: a default derived from the data (`auto` or
  /// nullopt leaves it to be resolved; recorded as null until then).
  template <class E>
  Schema& choice(std::string name, std::optional<E> P::*member, std::vector<std::pair<E, std::string>> names,
                 ParamSpec info = {}) {
    return add_choice<E>(std::move(name), member, std::move(names), std::move(info));
  }

  /// A member of any other type T, read and recorded by `codec`.
  template <class T>
  Schema& custom(std::string name, T P::*member, const Codec<T>& codec, ParamSpec info = {}) {
    Field f;
    f.doc.name = std::move(name);
    f.doc.type = codec.type;
    if (info.expect.empty()) info.expect = codec.expect;
    f.doc.info = std::move(info);
    f.access = schema_detail::custom_access<T>(codec);
    f.offset = schema_detail::offset_of(member);
    return add(std::move(f));
  }

  /// Every field of `sub` (the schema of member `member`), flattened into this one, and its checks.
  template <class Q>
  Schema& nested(Q P::*member, const Schema<Q>& sub) {
    const std::size_t base = schema_detail::offset_of(member);
    for (Field f : sub.fields()) {
      f.offset += base;
      add(std::move(f));
    }
    for (const auto& c : sub.checks()) checks_.push_back([member, c](const P& p, const std::string& flag) { c(p.*member, flag); });
    return *this;
  }

  /// A reusable group of declarations (e.g. a parameter that every method of a family has,
  /// declared once in a shared header as a function of the schema), applied in place.
  template <class Part>
  Schema& with(const Part& part) {
    part(*this);
    return *this;
  }

  /// A check across fields, run after every field is read (throw lab::Error through fail_value
  /// or fail_parameter, naming the settings involved).
  Schema& check(Check c) {
    checks_.push_back(std::move(c));
    return *this;
  }

  /// Reads every declared key present in `options` (marking it read) onto `start`, then
  /// validates. Keys not declared stay unread; the caller's Options::finish() refuses them.
  P read(Options& options, P start = P{}) const {
    schema_detail::read_fields(fields_, options, &start);
    validate(start, options.flag());
    return start;
  }

  /// Reads a JSON object of settings (as a config holds them); unknown keys are refused.
  P from_json(const nlohmann::json& object, const std::string& flag, P start = P{}) const {
    Options options = Options::from_json(object, flag);
    P p = read(options, std::move(start));
    options.finish(names());
    return p;
  }

  /// Checks every field's value against its declaration, then the cross-field checks.
  void validate(const P& p, const std::string& flag = "-p") const {
    schema_detail::validate_fields(fields_, &p, flag);
    for (const Check& c : checks_) c(p, flag);
  }

  /// {name: value, ...} in declaration order: the resolved-parameter record.
  nlohmann::json to_json(const P& p) const { return schema_detail::fields_json(fields_, &p); }

  /// Every parameter's documentation, defaults taken from P{}.
  std::vector<ParamDoc> docs() const {
    const P defaults{};
    return schema_detail::fields_docs(fields_, &defaults);
  }

  std::vector<std::string> names() const { return schema_detail::field_names(fields_); }

  const std::vector<Field>& fields() const { return fields_; }
  const std::vector<Check>& checks() const { return checks_; }

 private:
  /// A choice() field on member M, which is E or std::optional<E>.
  template <class E, class M>
  Schema& add_choice(std::string name, M P::*member, std::vector<std::pair<E, std::string>> names, ParamSpec info) {
    for (const auto& [value, text] : names) info.choices.push_back(text);
    Field f;
    f.doc.name = std::move(name);
    f.doc.type = ParamType::kEnum;
    f.doc.info = std::move(info);
    f.access = schema_detail::choice_access<E, M>(std::move(names));
    f.offset = schema_detail::offset_of(member);
    return add(std::move(f));
  }

  Schema& add(Field f) {
    schema_detail::add_field(fields_, std::move(f));
    return *this;
  }

  std::vector<Field> fields_;
  std::vector<Check> checks_;
};

/// Names of documented parameters (what Options::finish lists as known).
std::vector<std::string> param_names(const std::vector<ParamDoc>& docs);
/// [doc.to_json(), ...]
nlohmann::json docs_json(const std::vector<ParamDoc>& docs);

}  // namespace lab
