#include <utility>
#include <vector>

#include <mpctl/proto/bounded_json.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::proto {

using json = nlohmann::json;

namespace {

// A SAX handler that builds the DOM itself (as nlohmann's json_sax_dom_parser does) and refuses a level
// past the bound by stopping the parse there.
class BoundedBuilder {
  public:
    // RESTORE: the text was rewritten by mark_escaped_bytes, and each string must be restored.
    BoundedBuilder(std::size_t max_depth, std::string_view raw_member, bool restore)
        : max_depth_(max_depth), raw_member_(raw_member), restore_(restore) {}

    bool null() { return add(nullptr); }
    bool boolean(bool v) { return add(v); }
    bool number_integer(json::number_integer_t v) { return add(v); }
    bool number_unsigned(json::number_unsigned_t v) { return add(v); }
    bool number_float(json::number_float_t v, const std::string& text) {
        if (at_raw_member()) {
            raw_text_ = text;
        }
        return add(v);
    }
    bool string(std::string& v) {
        if (restore_) {
            restore_bytes(v);
        }
        return add(std::move(v));
    }
    bool binary(json::binary_t& v) { return add(std::move(v)); }

    bool start_object(std::size_t) { return open(json::value_t::object); }
    bool start_array(std::size_t) { return open(json::value_t::array); }
    bool key(std::string& k) {
        if (restore_) {
            restore_bytes(k);
        }
        member_ = &(*stack_.back())[k];
        top_level_key_ = stack_.size() == 1 ? k : std::string();
        return true;
    }
    bool end_object() { return close(); }
    bool end_array() { return close(); }

    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
        syntax_error_ = true;
        return false;
    }

    BoundedJson take() {
        BoundedJson out;
        if (too_deep_) {
            out.outcome = BoundedJson::Outcome::too_deep;
        } else if (syntax_error_) {
            out.outcome = BoundedJson::Outcome::syntax_error;
        } else {
            out.value = std::move(root_);
            out.raw_member_text = std::move(raw_text_);
        }
        return out;
    }

  private:
    [[nodiscard]] bool at_raw_member() const {
        return !raw_member_.empty() && stack_.size() == 1 && stack_.back()->is_object() &&
               top_level_key_ == raw_member_;
    }

    template <class V>
    json* place(V&& v) {
        if (stack_.empty()) {
            root_ = json(std::forward<V>(v));
            return &root_;
        }
        json& parent = *stack_.back();
        if (parent.is_array()) {
            parent.emplace_back(std::forward<V>(v));
            return &parent.back();
        }
        *member_ = json(std::forward<V>(v));
        return member_;
    }

    template <class V>
    bool add(V&& v) {
        place(std::forward<V>(v));
        return true;
    }

    bool open(json::value_t type) {
        if (stack_.size() >= max_depth_) {
            too_deep_ = true;
            return false;
        }
        stack_.push_back(place(type));
        return true;
    }

    bool close() {
        stack_.pop_back();
        return true;
    }

    std::size_t max_depth_;
    std::string_view raw_member_;
    bool restore_;
    json root_;
    std::vector<json*> stack_;
    json* member_ = nullptr;
    std::string top_level_key_;
    std::string raw_text_;
    bool too_deep_ = false;
    bool syntax_error_ = false;
};

}  // namespace

BoundedJson parse_bounded_json(std::string_view text, std::size_t max_depth, std::string_view raw_member) {
    // nlohmann's lexer takes a NUL byte for the end of the input: `{...}\0anything` read as the object
    // before the NUL, and the rest was never looked at. JSON has no raw NUL anywhere (a string escapes it as
    // \u0000), so a text holding one is malformed, whatever surrounds it.
    if (text.find('\0') != std::string_view::npos) {
        BoundedJson out;
        out.outcome = BoundedJson::Outcome::syntax_error;
        return out;
    }
    auto marked = mark_escaped_bytes(text);
    BoundedBuilder builder(max_depth, raw_member, marked.has_value());
    // strict: trailing garbage after the value is an error. A parse stopped by the builder reports false.
    bool complete = false;
    try {
        complete = json::sax_parse(marked ? std::string_view(*marked) : text, &builder,
                                   json::input_format_t::json, true);
    } catch (const json::exception&) {
        // sax_parse reports through parse_error; this is only for what it throws regardless.
        complete = false;
    }
    BoundedJson out = builder.take();
    if (!complete && out.outcome == BoundedJson::Outcome::ok) {
        out.outcome = BoundedJson::Outcome::syntax_error;
        out.value = nullptr;
    }
    return out;
}

}  // namespace mpctl::proto
