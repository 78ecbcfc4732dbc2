// mpctl queue put|get|info|list|delete: the daemon's named FIFO queues (queue.* methods), durable by
// default: a multiprocessing.Queue that every process and shell script shares.

#include <algorithm>
#include <cctype>
#include <poll.h>
#include <unistd.h>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/common/terminal_text.hpp>
#include <mpctl/proto/json_text.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

constexpr size_t k_put_max_values = 10'000;      // queue.put's own limit
constexpr size_t k_stream_batch_values = 1'000;  // per put, when values stream in from stdin
constexpr size_t k_put_batch_bytes =
    512 * 1024;  // of the values' JSON text per put (a line is 1 MiB at most)

struct PutOptions {
    std::string name;
    std::optional<int64_t> maxsize;
    bool memory = false;
    bool nonblock = false;
    std::string timeout;
};

// --nonblock or --timeout S into PARAMS (queue.put's and queue.get's).
void add_queue_wait(json& params, bool nonblock, const std::string& timeout) {
    if (nonblock && !timeout.empty()) {
        throw CliError(exit_code::usage, "--nonblock and --timeout: one or the other");
    }
    if (nonblock) {
        params["nonblock"] = true;
    }
    if (!timeout.empty()) {
        params["timeout"] = parse_seconds(timeout, "--timeout");
    }
}

// Values for queue.put in batches of at most MAX_VALUES values and k_put_batch_bytes of JSON text (a value
// longer than that goes alone, for the daemon to judge). With --json, each put's result is printed.
class PutBatches {
  public:
    PutBatches(AppContext& ctx, Client& client, const PutOptions& o, size_t max_values)
        : ctx_(ctx), client_(client), max_values_(max_values) {
        json params = {{"name", o.name}};
        if (o.maxsize) {
            params["maxsize"] = *o.maxsize;  // the same on every put is fine; a different one is refused
        }
        if (o.memory) {
            params["memory"] = true;
        }
        add_queue_wait(params, o.nonblock, o.timeout);
        head_ = proto::dump_json(params);
        head_.pop_back();  // the closing brace: the values follow
        head_ += ",\"values\":[";
    }

    // VALUE: one value's JSON text. Sends the waiting batch first when VALUE does not fit in it.
    void add(std::string_view value) {
        if (count_ > 0 && (count_ == max_values_ || values_.size() + 1 + value.size() > k_put_batch_bytes)) {
            flush();
        }
        if (count_ > 0) {
            values_.push_back(',');
        }
        values_ += value;
        ++count_;
    }

    [[nodiscard]] bool empty() const { return count_ == 0; }

    void flush() {
        if (count_ == 0) {
            return;
        }
        json result;
        try {
            result = client_.call_text("queue.put", head_ + values_ + "]}");
        } catch (const CliError& e) {
            if (put_ == 0) {
                throw;
            }
            throw CliError(
                e.code(),
                std::string(e.what()) + "; the " + std::to_string(put_) + " values before these were put",
                e.error());
        }
        if (ctx_.global.json) {
            print_json(result);
        }
        put_ += count_;
        count_ = 0;
        values_.clear();
    }

  private:
    AppContext& ctx_;
    Client& client_;
    size_t max_values_;
    std::string head_;    // the params up to the values array's first value
    std::string values_;  // the batch's values, comma-separated
    size_t count_ = 0;
    uint64_t put_ = 0;  // by the batches before
};

// How many values one put of a stream may carry: k_stream_batch_values, and no more than the queue's
// maxsize (the daemon refuses a put larger than that), or --maxsize's for a queue not there yet.
size_t stream_batch_size(Client& client, const PutOptions& o) {
    int64_t maxsize = 0;
    try {
        maxsize = client.call("queue.info", {{"name", o.name}}).value("maxsize", int64_t{0});
    } catch (const CliError& e) {
        if (e.code() != exit_code::unknown_id) {
            throw;
        }
    }
    if (maxsize == 0 && o.maxsize) {
        maxsize = *o.maxsize;
    }
    return maxsize > 0 ? std::min(k_stream_batch_values, static_cast<size_t>(maxsize))
                       : k_stream_batch_values;
}

// Whether something is waiting on stdin now (a pipe's writer that pauses: what came so far is sent).
bool stdin_ready() {
    pollfd pfd{0, POLLIN, 0};
    return ::poll(&pfd, 1, 0) > 0;
}

// Stdin into the queue, one value per line (a last line without its newline too).
void put_lines(PutBatches& batches) {
    std::string pending;
    std::vector<char> chunk(64 * 1024);
    for (;;) {
        auto got = common::read_once(0, chunk.data(), chunk.size());
        if (!got) {
            throw CliError(exit_code::failure, "stdin: " + got.error().message());
        }
        if (*got == 0) {
            break;
        }
        pending.append(chunk.data(), *got);
        size_t start = 0;
        for (size_t nl = 0; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
            batches.add(proto::dump_json(
                proto::json_value_from_word(std::string_view(pending).substr(start, nl - start))));
        }
        pending.erase(0, start);
        if (!batches.empty() && !stdin_ready()) {
            batches.flush();
        }
    }
    if (!pending.empty()) {
        batches.add(proto::dump_json(proto::json_value_from_word(pending)));
    }
    batches.flush();
}

// A word that CLI11 left over because it looked like an option nobody has: refused rather than queued.
bool looks_like_option(const std::string& w) {
    if (w.size() > 2 && w.starts_with("--")) {
        return true;
    }
    return w.size() > 1 && w[0] == '-' &&
           (std::isalpha(static_cast<unsigned char>(w[1])) != 0 || w[1] == '_');
}

int put(AppContext& ctx, const PutOptions& o, const std::vector<std::string>& words,
        const std::vector<std::string>& literal_words) {
    bool from_stdin = words.size() == 1 && words[0] == "-" && literal_words.empty();
    if (!from_stdin) {
        for (const auto& w : words) {
            if (w == "-") {
                throw CliError(exit_code::usage,
                               "'-' (one value per stdin line) goes alone; the string - is "
                               "written '\"-\"' or after \"--\"");
            }
        }
    }
    std::vector<std::string> values;  // each one's JSON text
    if (!from_stdin) {
        for (const auto* list : {&words, &literal_words}) {
            for (const auto& w : *list) {
                values.push_back(proto::dump_json(proto::json_value_from_word(w)));
            }
        }
        if (values.empty()) {
            throw CliError(
                exit_code::usage,
                "missing VALUE (mpctl queue put NAME VALUE..., or - for one value per stdin line)");
        }
    }
    Client client = Client::connect(ctx.global);
    // The values of the command line go in one put, together, when one request holds them; more (and
    // stdin's) go as a stream of puts, each small enough for the queue.
    size_t bytes = 0;
    for (const auto& v : values) {
        bytes += v.size() + 1;
    }
    bool one_put = !from_stdin && values.size() <= k_put_max_values && bytes <= k_put_batch_bytes;
    PutBatches batches(ctx, client, o, one_put ? k_put_max_values : stream_batch_size(client, o));
    if (from_stdin) {
        put_lines(batches);
        return exit_code::ok;
    }
    for (const auto& v : values) {
        batches.add(v);
    }
    batches.flush();
    return exit_code::ok;
}

std::string queue_number(const json& q, const char* key) {
    return std::to_string(q.at(key).get<int64_t>());
}

std::string queue_maxsize(const json& q, const char* unbounded) {
    int64_t maxsize = q.at("maxsize").get<int64_t>();
    return maxsize == 0 ? unbounded : std::to_string(maxsize);
}

void add_put_command(CLI::App* queue, AppContext& ctx) {
    auto* sub = queue->add_subcommand("put", "Put the VALUEs at the tail of queue NAME, together, in order");
    auto o = std::make_shared<PutOptions>();
    sub->add_option("name", o->name, "Queue name")->required();
    // The VALUEs are the words CLI11 leaves over, not a list option: CLI11 would split a word written
    // "[1,2]" at its commas. Options may come anywhere; words after "--" are VALUEs whatever they look like.
    sub->allow_extras();
    sub->fallthrough(false);  // the words belong to put, not to the root app
    add_global_options(*sub, ctx.global);
    set_usage_tail(sub, "VALUE... | -");
    sub->footer(
        "VALUE: 42, -1.5, true, null, [1,2], '{\"a\": 1}', text (or '\"text\"'); a word that is not JSON is "
        "a "
        "string. A lone - reads one VALUE per stdin line (an empty line is the empty string), put in batches "
        "as they come.");
    sub->add_option("--maxsize", o->maxsize, "On the queue's first put: hold at most N values (0: unbounded)")
        ->check(whole_number(0, 1'000'000'000))
        ->type_name("N");
    sub->add_flag("--memory", o->memory,
                  "On the queue's first put: keep it in memory only (faster, not durable)");
    sub->add_flag("-n,--nonblock", o->nonblock, "Fail at once (exit 5) if the queue has no room");
    sub->add_option("-w,--timeout", o->timeout, "Wait at most S for room, each put (exit 124)")
        ->type_name("S");
    sub->callback([&ctx, sub, o] {
        auto words = std::make_shared<std::vector<std::string>>(sub->remaining());
        for (const auto& w : *words) {
            if (looks_like_option(w)) {
                throw CliError(exit_code::usage, "queue put: unknown option " + common::terminal_text(w) +
                                                     " (a VALUE that begins with - goes as JSON, '\"" +
                                                     common::terminal_text(w) + "\"', or after \"--\")");
            }
        }
        auto literal = std::make_shared<std::vector<std::string>>();
        if (ctx.has_separator) {
            *literal = ctx.after_separator;
            ctx.separator_used = true;
        }
        ctx.action = [&ctx, o, words, literal] {
            return put(ctx, *o, *words, *literal);
        };
    });
}

void add_get_command(CLI::App* queue, AppContext& ctx) {
    auto* sub = queue->add_subcommand(
        "get", "Take values from the head of queue NAME, waiting for them; print one a line");
    auto name = std::make_shared<std::string>();
    auto count = std::make_shared<int64_t>(1);
    auto nonblock = std::make_shared<bool>(false);
    auto timeout = std::make_shared<std::string>();
    sub->add_option("name", *name, "Queue name")->required();
    sub->add_option("-c,--count", *count, "Take N values, together (default 1)")
        ->check(whole_number(1, static_cast<int64_t>(k_put_max_values)))
        ->type_name("N");
    sub->add_flag("-n,--nonblock", *nonblock, "Fail at once (exit 5) if there are fewer than N");
    sub->add_option("-w,--timeout", *timeout, "Give up after S (exit 124)")->type_name("S");
    sub->footer("A string is printed as it is, any other value as JSON; --json prints the answer object.");
    sub->callback([&ctx, name, count, nonblock, timeout] {
        ctx.action = [&ctx, name, count, nonblock, timeout] {
            json params = {{"name", *name}, {"count", *count}};
            add_queue_wait(params, *nonblock, *timeout);
            Client client = Client::connect(ctx.global);
            json got = client.call("queue.get", params);
            if (ctx.global.json) {
                print_json(got);
                return exit_code::ok;
            }
            bool terminal = ::isatty(1) == 1;
            std::string out;
            for (const auto& v : got.at("values")) {
                out += value_text(v, terminal) + "\n";
            }
            write_out(1, out);
            return exit_code::ok;
        };
    });
}

void add_queue_info_commands(CLI::App* queue, AppContext& ctx) {
    auto* info = queue->add_subcommand("info", "A queue's length, size, maxsize, kind and waiters");
    auto info_name = std::make_shared<std::string>();
    info->add_option("name", *info_name, "Queue name")->required();
    info->callback([&ctx, info_name] {
        ctx.action = [&ctx, info_name] {
            Client client = Client::connect(ctx.global);
            json q = client.call("queue.info", {{"name", *info_name}});
            if (ctx.global.json) {
                print_json(q);
                return exit_code::ok;
            }
            const json& created = q.value("created_at", json(nullptr));
            write_out(1, "name:     " + common::terminal_text(q.at("name").get<std::string>()) +
                             "\nlength:   " + queue_number(q, "length") + "\nbytes:    " +
                             queue_number(q, "bytes") + "\nmaxsize:  " + queue_maxsize(q, "unbounded") +
                             "\ndurable:  " + (q.at("durable").get<bool>() ? "yes" : "no") + "\ngetters:  " +
                             queue_number(q, "getters") + "\nputters:  " + queue_number(q, "putters") +
                             "\ncreated:  " + (created.is_string() ? created.get<std::string>() : "-") +
                             "\n");
            return exit_code::ok;
        };
    });

    auto* ls = queue->add_subcommand("list", "Queues: length, size, maxsize, kind and waiters");
    ls->callback([&ctx] {
        ctx.action = [&ctx] {
            Client client = Client::connect(ctx.global);
            json result = client.call("queue.list", json::object());
            if (ctx.global.json) {
                for (const auto& q : result.at("queues")) {
                    print_json(q);
                }
                return exit_code::ok;
            }
            std::vector<std::vector<std::string>> rows{
                {"NAME", "LENGTH", "BYTES", "MAXSIZE", "DURABLE", "GETTERS", "PUTTERS"}};
            for (const auto& q : result.at("queues")) {
                rows.push_back({common::terminal_text(q.at("name").get<std::string>()),
                                queue_number(q, "length"), queue_number(q, "bytes"), queue_maxsize(q, "-"),
                                q.at("durable").get<bool>() ? "yes" : "no", queue_number(q, "getters"),
                                queue_number(q, "putters")});
            }
            if (rows.size() > 1) {
                write_out(1, format_table(rows, {false, true, true, true, false, true, true}));
            }
            return exit_code::ok;
        };
    });

    auto* del = queue->add_subcommand("delete", "Delete a queue and its values; its waiters fail (exit 4)");
    auto del_name = std::make_shared<std::string>();
    del->add_option("name", *del_name, "Queue name")->required();
    del->callback([&ctx, del_name] {
        ctx.action = [&ctx, del_name] {
            Client client = Client::connect(ctx.global);
            json result = client.call("queue.delete", {{"name", *del_name}});
            if (ctx.global.json) {
                print_json(result);
            }
            return exit_code::ok;
        };
    });
}

}  // namespace

void add_queue_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;
    auto* queue = app.add_subcommand("queue", "Named FIFO queues in the daemon, durable by default");
    queue->require_subcommand(1);
    add_put_command(queue, ctx);
    add_get_command(queue, ctx);
    add_queue_info_commands(queue, ctx);
}

}  // namespace mpctl::cli
