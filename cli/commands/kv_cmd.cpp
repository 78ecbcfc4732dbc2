// mpctl kv set|get|del|list|cas|watch: the daemon's named dicts (kv.* methods), journaled, with a version
// for every change: a Manager().dict() that every process and shell script shares, with compare-and-set
// and a stream of changes.

#include <unistd.h>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/common/terminal_text.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

// What --help says of the value words WORDS ("VALUE", "OLD and NEW").
std::string kv_value_footer(const std::string& words) {
    return words +
           ": 42, -1.5, true, null, [1,2], '{\"a\": 1}', text (or '\"text\"'); a word that is not JSON is a "
           "string.";
}

// Runs METHOD; with --json prints its result, else nothing.
int kv_call(AppContext& ctx, const char* method, const json& params) {
    Client client = Client::connect(ctx.global);
    json result = client.call(method, params);
    if (ctx.global.json) {
        print_json(result);
    }
    return exit_code::ok;
}

// A value in a message: its JSON, cut short if long.
std::string kv_value_in_message(const json& value) {
    constexpr size_t k_max = 200;
    std::string text = proto::dump_json(value);
    if (text.size() > k_max) {
        size_t cut = k_max;
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
            --cut;  // not inside a character
        }
        text = text.substr(0, cut) + "...";
    }
    return common::terminal_text(text);
}

struct CasOptions {
    std::string name;
    std::string key;
    std::string expect;
    bool absent = false;
    std::string value;
    bool remove = false;
};

// kv cas: a mismatch is the daemon's `busy` with what the key holds; said as what it holds, not what was
// expected (exit 5).
int kv_cas(AppContext& ctx, const CasOptions& o, bool has_expect, bool has_value) {
    if (has_expect == o.absent) {
        throw CliError(exit_code::usage, "kv cas: --expect OLD or --absent (one of them)");
    }
    if (has_value == o.remove) {
        throw CliError(exit_code::usage, "kv cas: NEW or --delete (one of them)");
    }
    json params = {{"name", o.name}, {"key", o.key}};
    json expected;
    if (o.absent) {
        params["absent"] = true;
    } else {
        expected = proto::json_value_from_word(o.expect);
        params["expect"] = expected;
    }
    if (o.remove) {
        params["delete"] = true;
    } else {
        params["value"] = proto::json_value_from_word(o.value);
    }
    try {
        return kv_call(ctx, "kv.cas", params);
    } catch (const CliError& e) {
        json data = e.error().is_object() ? e.error().value("data", json::object()) : json::object();
        bool holds = data.is_object() && data.contains("value");
        bool is_absent = data.is_object() && data.value("absent", false);
        if (e.code() != exit_code::busy || (!holds && !is_absent)) {
            throw;
        }
        std::string key =
            "kv cas: key " + common::terminal_text(o.key) + " of dict " + common::terminal_text(o.name);
        std::string message;
        if (is_absent) {
            message = key + " is absent, not " + kv_value_in_message(expected);
        } else {
            std::string holding = key + " holds " + kv_value_in_message(data["value"]) + " (version " +
                                  proto::dump_json(data.value("version", json(nullptr))) + ")";
            message =
                o.absent ? holding + ", not absent" : holding + ", not " + kv_value_in_message(expected);
        }
        throw CliError(e.code(), message, e.error());
    }
}

void add_kv_value_commands(CLI::App* kv, AppContext& ctx) {
    auto* set =
        kv->add_subcommand("set", "Set KEY of dict NAME to VALUE (the dict is made by its first set)");
    auto set_o = std::make_shared<CasOptions>();
    set->add_option("name", set_o->name, "Dict name")->required();
    set->add_option("key", set_o->key, "Key (a string)")->required();
    set->add_option("value", set_o->value, "The value (JSON, or a string)")->required();
    set->footer(kv_value_footer("VALUE"));
    set->callback([&ctx, set_o] {
        ctx.action = [&ctx, set_o] {
            return kv_call(ctx, "kv.set",
                           {{"name", set_o->name},
                            {"key", set_o->key},
                            {"value", proto::json_value_from_word(set_o->value)}});
        };
    });

    auto* get = kv->add_subcommand("get", "Print KEY's value (a string as it is, any other value as JSON)");
    auto get_o = std::make_shared<CasOptions>();
    get->add_option("name", get_o->name, "Dict name")->required();
    get->add_option("key", get_o->key, "Key")->required();
    get->callback([&ctx, get_o] {
        ctx.action = [&ctx, get_o] {
            Client client = Client::connect(ctx.global);
            json got = client.call("kv.get", {{"name", get_o->name}, {"key", get_o->key}});
            if (ctx.global.json) {
                print_json(got);
            } else {
                write_out(1, value_text(got.at("value"), ::isatty(1) == 1) + "\n");
            }
            return exit_code::ok;
        };
    });

    auto* del = kv->add_subcommand("del", "Delete KEY of dict NAME (exit 4 if it has none)");
    auto del_o = std::make_shared<CasOptions>();
    del->add_option("name", del_o->name, "Dict name")->required();
    del->add_option("key", del_o->key, "Key")->required();
    del->callback([&ctx, del_o] {
        ctx.action = [&ctx, del_o] {
            return kv_call(ctx, "kv.del", {{"name", del_o->name}, {"key", del_o->key}});
        };
    });

    auto* cas = kv->add_subcommand(
        "cas", "Compare and set: set (or --delete) KEY only if it holds OLD (or is --absent); else exit 5");
    auto cas_o = std::make_shared<CasOptions>();
    cas->add_option("name", cas_o->name, "Dict name")->required();
    cas->add_option("key", cas_o->key, "Key")->required();
    auto* new_value = cas->add_option("new", cas_o->value, "The new value (JSON, or a string)");
    auto* expect =
        cas->add_option("--expect", cas_o->expect, "KEY must hold OLD (compared as JSON)")->type_name("OLD");
    cas->add_flag("--absent", cas_o->absent, "KEY must not exist");
    cas->add_flag("--delete", cas_o->remove, "Delete KEY instead of setting it");
    cas->footer(kv_value_footer("OLD and NEW") + " A mismatch prints what KEY holds and exits 5.");
    cas->callback([&ctx, cas_o, new_value, expect] {
        bool has_expect = expect->count() > 0;
        bool has_value = new_value->count() > 0;
        ctx.action = [&ctx, cas_o, has_expect, has_value] {
            return kv_cas(ctx, *cas_o, has_expect, has_value);
        };
    });
}

void add_kv_view_commands(CLI::App* kv, AppContext& ctx) {
    auto* ls = kv->add_subcommand("list", "A dict's keys, values and versions");
    auto ls_name = std::make_shared<std::string>();
    ls->add_option("name", *ls_name, "Dict name")->required();
    ls->callback([&ctx, ls_name] {
        ctx.action = [&ctx, ls_name] {
            Client client = Client::connect(ctx.global);
            json result = client.call("kv.list", {{"name", *ls_name}});
            if (ctx.global.json) {
                for (const auto& e : result.at("entries")) {
                    print_json(e);
                }
                return exit_code::ok;
            }
            std::vector<std::vector<std::string>> rows{{"KEY", "VALUE", "VERSION"}};
            for (const auto& e : result.at("entries")) {
                rows.push_back({common::terminal_text(e.at("key").get<std::string>()),
                                value_text(e.at("value"), true),
                                std::to_string(e.at("version").get<int64_t>())});
            }
            if (rows.size() > 1) {
                write_out(1, format_table(rows, {false, false, true}));
            }
            return exit_code::ok;
        };
    });

    auto* watch = kv->add_subcommand(
        "watch", "Print each change of dict NAME (or of its KEY) as a JSON line, as it happens");
    auto w_name = std::make_shared<std::string>();
    auto w_key = std::make_shared<std::string>();
    auto w_current = std::make_shared<bool>(false);
    auto w_timeout = std::make_shared<std::string>();
    watch->add_option("name", *w_name, "Dict name")->required();
    auto* key = watch->add_option("key", *w_key, "Only this key");
    watch->add_flag("--current", *w_current, "First print every entry there is, as changes");
    watch->add_option("-w,--timeout", *w_timeout, "Stop after S (exit 124)")->type_name("S");
    watch->footer(
        "Each line: {\"name\", \"key\", \"value\", \"version\"}, or {\"name\", \"key\", \"deleted\": true, "
        "\"version\"}, in version order.");
    watch->callback([&ctx, w_name, w_key, key, w_current, w_timeout] {
        bool has_key = key->count() > 0;
        ctx.action = [&ctx, w_name, w_key, has_key, w_current, w_timeout] {
            json params = {{"name", *w_name}};
            if (has_key) {
                params["key"] = *w_key;
            }
            if (*w_current) {
                params["current"] = true;
            }
            if (!w_timeout->empty()) {
                params["timeout"] = parse_seconds(*w_timeout, "--timeout");
            }
            Client client = Client::connect(ctx.global);
            // Lines as they come: print_json writes each at once (no buffer to flush).
            client.call("kv.watch", params, [](const std::string& method, const json& changed) {
                if (method == "kv.changed") {
                    print_json(changed);
                }
            });
            return exit_code::ok;
        };
    });
}

}  // namespace

void add_kv_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;
    auto* kv =
        app.add_subcommand("kv", "Named dicts in the daemon, with versions, compare-and-set and watches");
    kv->require_subcommand(1);
    add_kv_value_commands(kv, ctx);
    add_kv_view_commands(kv, ctx);
}

}  // namespace mpctl::cli
