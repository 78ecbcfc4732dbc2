// mpctl shm create|list|info|read|write|unlink: POSIX shared-memory segments that Python's SharedMemory
// attaches to, registered with the daemon (shm.* methods) and leased to their owners. `read` and `write`
// use the segment's file directly (common/shm.hpp): bytes never travel through the daemon.

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/common/shm.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/common/terminal_text.hpp>
#include <mpctl/proto/json_text.hpp>
#include <mpctl/proto/list_values.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

std::string segment_name(const std::string& arg) {
    auto name = common::shm::normalize_name(arg);
    if (!name) {
        throw CliError(exit_code::usage, "'" + arg + "': " + name.error().message());
    }
    return *name;
}

common::UniqueFd open_segment(const std::string& name, int flags) {
    auto fd = common::shm::open_segment(name, flags);
    if (!fd) {
        throw CliError(fd.error().err == ENOENT ? exit_code::unknown_id : exit_code::failure,
                       fd.error().err == ENOENT ? "no segment " + name : fd.error().message());
    }
    return std::move(*fd);
}

uint64_t segment_size(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

struct CreateOptions {
    std::string name;
    uint64_t size = 0;
    std::string mode = "600";
    int64_t owner_pid = 0;
    std::string ttl;
    bool persist = false;
};

// The lease part of shm.create and shm.list_create's params.
void add_lease_params(json& params, const CreateOptions& o, const GlobalOptions& global) {
    if (o.persist) {
        if (o.owner_pid != 0 || !o.ttl.empty()) {
            throw CliError(exit_code::usage, "--persist: a persistent segment has no owner or --ttl");
        }
        params["persist"] = true;
    } else {
        if (auto pid = lease_pid(global, o.owner_pid, !o.ttl.empty())) {
            params["pid"] = *pid;
        }
        if (!o.ttl.empty()) {
            params["ttl"] = parse_seconds(o.ttl, "--ttl");
        }
    }
}

// shm read and write map /dev/shm/NAME of this machine themselves, without the daemon: not a remote one's.
void local_segments_only(const AppContext& ctx, const char* verb) {
    if (is_remote(ctx.global)) {
        throw CliError(exit_code::refused, std::string("mpctl shm ") + verb +
                                               " maps the segment on this machine, and a remote daemon's "
                                               "segments are on its own: run it there (or without --connect "
                                               "and MPCTL_CONNECT, for a segment of this machine)");
    }
}

int create(AppContext& ctx, const CreateOptions& o) {
    json params = {{"name", segment_name(o.name)}, {"size", o.size}, {"mode", o.mode}};
    add_lease_params(params, o, ctx.global);
    Client client = Client::connect(ctx.global);
    json made = client.call("shm.create", params);
    if (ctx.global.json) {
        print_json(made);
    }
    return exit_code::ok;
}

// Bytes of a segment to stdout, straight from its file.
int read(const std::string& arg, uint64_t offset, std::optional<uint64_t> length) {
    std::string name = segment_name(arg);
    common::UniqueFd fd = open_segment(name, O_RDONLY);
    uint64_t size = segment_size(fd.get());
    if (offset > size || (length && *length > size - offset)) {
        throw CliError(exit_code::usage, "segment " + name + " has " + std::to_string(size) +
                                             " bytes: --offset/--length past its end");
    }
    uint64_t left = length.value_or(size - offset);
    std::vector<char> buf(1 << 20);
    while (left > 0) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
        ssize_t got = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(offset));
        if (got <= 0) {
            throw CliError(exit_code::failure, "read " + common::shm::path_of(name) + ": " +
                                                   (got == 0 ? "shrank while read" : std::strerror(errno)));
        }
        write_out(1, std::string_view(buf.data(), static_cast<size_t>(got)));
        offset += static_cast<uint64_t>(got);
        left -= static_cast<uint64_t>(got);
    }
    return exit_code::ok;
}

// The segment's bytes [OFFSET, OFFSET + LENGTH) mapped for writing (a view into the mapping of the pages
// around them), so that input is read straight into the segment: one copy, where `cat > /dev/shm/x` makes
// two (into its buffer, then into the file).
// The largest pipe buffer an unprivileged process may ask for (/proc/sys/fs/pipe-max-size).
int pipe_max_size() {
    std::ifstream f("/proc/sys/fs/pipe-max-size");
    int n = 0;
    return f >> n && n > 0 ? n : 1 << 20;
}

// Memory for input kept until it is known to fit, faulted in at once (MAP_POPULATE): a fault per page, as
// fresh heap memory takes, cost as much as the copying.
class StagingPiece {
  public:
    explicit StagingPiece(size_t size) : size_(size) {
        void* at =
            ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (at == MAP_FAILED) {
            throw CliError(exit_code::failure,
                           std::string("stdin: no memory to keep it in: ") + std::strerror(errno));
        }
        data_ = static_cast<char*>(at);
    }
    ~StagingPiece() {
        if (data_ != nullptr) {
            ::munmap(data_, size_);
        }
    }
    StagingPiece(StagingPiece&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(o.size_) {}
    StagingPiece(const StagingPiece&) = delete;
    StagingPiece& operator=(const StagingPiece&) = delete;
    StagingPiece& operator=(StagingPiece&&) = delete;
    [[nodiscard]] char* data() const { return data_; }
    [[nodiscard]] size_t size() const { return size_; }

  private:
    char* data_ = nullptr;
    size_t size_ = 0;
};

class MappedRange {
  public:
    MappedRange(int fd, uint64_t offset, uint64_t length, const std::string& name) {
        const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
        uint64_t start = offset / page * page;
        len_ = offset - start + length;
        if (length == 0) {
            return;
        }
        base_ = ::mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                       static_cast<off_t>(start));
        if (base_ == MAP_FAILED) {
            base_ = nullptr;
            throw CliError(exit_code::failure,
                           "mmap " + common::shm::path_of(name) + ": " + std::strerror(errno));
        }
        at_ = static_cast<char*>(base_) + (offset - start);
    }
    ~MappedRange() {
        if (base_ != nullptr) {
            ::munmap(base_, len_);
        }
    }
    MappedRange(const MappedRange&) = delete;
    MappedRange& operator=(const MappedRange&) = delete;
    [[nodiscard]] char* data() const { return at_; }

  private:
    void* base_ = nullptr;
    size_t len_ = 0;
    char* at_ = nullptr;
};

// Stdin into a segment at OFFSET. Nothing is written unless all of it fits: a file's size is known at
// once (and it is read straight into the segment); a pipe's input is read in full first, up to one byte
// past what fits.
int write(const std::string& arg, uint64_t offset) {
    std::string name = segment_name(arg);
    common::UniqueFd fd = open_segment(name, O_RDWR);
    uint64_t size = segment_size(fd.get());
    if (offset > size) {
        throw CliError(exit_code::usage, "--offset " + std::to_string(offset) + ": past the end of segment " +
                                             name + " (" + std::to_string(size) + " bytes)");
    }
    uint64_t room = size - offset;
    auto too_long = [&](uint64_t n) {
        return CliError(exit_code::usage, std::to_string(n) + " bytes do not fit in segment " + name +
                                              " at offset " + std::to_string(offset) + " (" +
                                              std::to_string(room) + " bytes left); nothing was written");
    };
    auto read_into = [](char* dst, uint64_t n) {
        uint64_t done = 0;
        while (done < n) {
            auto got = common::read_once(0, dst + done, static_cast<size_t>(n - done));
            if (!got) {
                throw CliError(exit_code::failure, got.error().message());
            }
            if (*got == 0) {
                break;
            }
            done += *got;
        }
        return done;
    };
    struct stat in {};
    if (::fstat(0, &in) == 0 && S_ISREG(in.st_mode)) {
        off_t pos = ::lseek(0, 0, SEEK_CUR);
        uint64_t n = static_cast<uint64_t>(in.st_size - std::max<off_t>(pos, 0));
        if (n > room) {
            throw too_long(n);
        }
        MappedRange dst(fd.get(), offset, n, name);
        if (read_into(dst.data(), n) != n) {
            throw CliError(exit_code::failure, "stdin: the file shrank while it was read");
        }
        return exit_code::ok;
    }
    // A pipe or a terminal: kept in pieces (no reallocation), then copied in once it is known to fit. A
    // pipe is widened to the most an unprivileged process may ask (1 MiB by default): with the 64 KiB it
    // comes with, the writer and mpctl woke each other for every 64 KiB, which cost more than the copying.
    if (S_ISFIFO(in.st_mode)) {
        ::fcntl(0, F_SETPIPE_SZ, pipe_max_size());
    }
    // Pieces grow from 64 KiB to 4 MiB: a few bytes cost little, a large input few pieces.
    std::vector<StagingPiece> pieces;
    uint64_t total = 0, last = 0;
    for (;;) {
        if (pieces.empty() || last == pieces.back().size()) {
            pieces.emplace_back(
                std::min<size_t>(size_t{64} << 10 << std::min<size_t>(pieces.size(), 6), 4u << 20));
            last = 0;
        }
        uint64_t got =
            read_into(pieces.back().data() + last, std::min(pieces.back().size() - last, room + 1 - total));
        last += got;
        total += got;
        if (total > room) {
            throw too_long(total);
        }
        if (got == 0) {
            break;  // the end of the input
        }
    }
    if (total == 0) {
        return exit_code::ok;
    }
    MappedRange dst(fd.get(), offset, total, name);
    uint64_t at = 0;
    for (const auto& piece : pieces) {
        uint64_t n = std::min<uint64_t>(piece.size(), total - at);
        std::memcpy(dst.data() + at, piece.data(), n);
        at += n;
    }
    return exit_code::ok;
}

// VALUE words of the command line as list items: JSON if they read as JSON, else strings.
json list_values(const std::vector<std::string>& words, const std::string& values_json) {
    if (!values_json.empty()) {
        if (!words.empty()) {
            throw CliError(exit_code::usage, "--values: or VALUE words, not both");
        }
        json parsed = proto::parse_json_text(values_json);
        if (!parsed.is_array()) {
            throw CliError(exit_code::usage, "--values: expected a JSON array");
        }
        return parsed;
    }
    json values = json::array();
    for (const auto& w : words) {
        auto v = proto::list_value_from_word(w);
        if (!v) {
            throw CliError(exit_code::usage, "'" + common::terminal_text(w) + "': " + v.error().message());
        }
        values.push_back(proto::list_value_to_json(*v));
    }
    return values;
}

// An item for a person: a string as it is, anything else as JSON.
std::string item_text(const json& v) {
    return v.is_string() ? common::terminal_text(v.get<std::string>()) : proto::dump_json(v);
}

std::string lease_text(const json& s) {
    if (s.value("persist", false)) {
        return "persist";
    }
    const json& lease = s.value("lease", json(nullptr));
    if (!lease.is_object()) {
        return "-";
    }
    std::string kind = lease.value("kind", std::string("?"));
    return kind == "ttl" ? "until " + lease.value("expires_at", std::string())
                         : kind + " " + std::to_string(lease.value("pid", 0));
}

int list(AppContext& ctx, bool all) {
    Client client = Client::connect(ctx.global);
    json result = client.call("shm.list", {{"all", all}});
    if (ctx.global.json) {
        for (const auto& s : result.at("segments")) {
            print_json(s);
        }
        return exit_code::ok;
    }
    std::vector<std::vector<std::string>> rows{{"NAME", "SIZE", "MODE", "LEASE", "CREATED"}};
    for (const auto& s : result.at("segments")) {
        rows.push_back({common::terminal_text(s.at("name").get<std::string>()),
                        std::to_string(s.at("size").get<uint64_t>()), s.at("mode").get<std::string>(),
                        s.value("registered", false) ? lease_text(s) : "(not registered)",
                        s.value("created_at", std::string("-"))});
    }
    if (rows.size() > 1) {
        write_out(1, format_table(rows, {false, true, false, false, false}));
    }
    return exit_code::ok;
}

}  // namespace

void add_shm_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    (void)only;
    auto* shm = app.add_subcommand("shm", "Shared-memory segments (Python's SharedMemory attaches to them)");
    shm->require_subcommand(1);

    auto* create_cmd =
        shm->add_subcommand("create", "Create segment NAME (/dev/shm/NAME), leased to its owner");
    auto o = std::make_shared<CreateOptions>();
    create_cmd->add_option("name", o->name, "Segment name (a leading / is dropped)")->required();
    create_cmd->add_option("--size", o->size, "Bytes")
        ->required()
        ->check(whole_number(1, INT64_MAX))
        ->type_name("BYTES");
    create_cmd->add_option("--mode", o->mode, "Permission bits, octal (default 600)")->type_name("MODE");
    create_cmd
        ->add_option("--owner-pid", o->owner_pid,
                     "Unlink it when process PID exits (default: mpctl's parent)")
        ->check(whole_number(1, 4194304))
        ->type_name("PID");
    create_cmd->add_option("--ttl", o->ttl, "Unlink it after S instead")->type_name("S");
    create_cmd->add_flag("--persist", o->persist, "Keep it until `mpctl shm unlink`, past the daemon's stop");
    create_cmd->callback([&ctx, o] {
        ctx.action = [&ctx, o] {
            return create(ctx, *o);
        };
    });

    auto* ls = shm->add_subcommand("list", "Registered segments (--all: every segment of /dev/shm)");
    auto all = std::make_shared<bool>(false);
    ls->add_flag("-a,--all", *all, "Segments not made by mpctl too");
    ls->callback([&ctx, all] {
        ctx.action = [&ctx, all] {
            return list(ctx, *all);
        };
    });

    auto* info =
        shm->add_subcommand("info", "A segment's size, mode, owner, lease and the processes that map it");
    auto info_name = std::make_shared<std::string>();
    info->add_option("name", *info_name, "Segment name")->required();
    info->callback([&ctx, info_name] {
        ctx.action = [&ctx, info_name] {
            Client client = Client::connect(ctx.global);
            json j = client.call("shm.info", {{"name", segment_name(*info_name)}});
            if (ctx.global.json) {
                print_json(j);
                return exit_code::ok;
            }
            std::string pids;
            for (const auto& p : j.at("attached")) {
                pids += (pids.empty() ? "" : " ") + std::to_string(p.get<int64_t>());
            }
            write_out(1, "name:     " + common::terminal_text(j.at("name").get<std::string>()) +
                             "\npath:     " + common::terminal_text(j.at("path").get<std::string>()) +
                             "\nsize:     " + std::to_string(j.at("size").get<uint64_t>()) +
                             "\nmode:     " + j.at("mode").get<std::string>() + "\nlease:    " +
                             (j.value("registered", false) ? lease_text(j) : "(not registered)") +
                             "\ncreated:  " + j.value("created_at", std::string("-")) +
                             "\nattached: " + (pids.empty() ? "-" : pids) + "\n");
            return exit_code::ok;
        };
    });

    auto* rd = shm->add_subcommand("read", "Write a segment's bytes to stdout");
    auto rd_name = std::make_shared<std::string>();
    auto rd_offset = std::make_shared<uint64_t>(0);
    auto rd_length = std::make_shared<std::optional<uint64_t>>();
    rd->add_option("name", *rd_name, "Segment name")->required();
    rd->add_option("--offset", *rd_offset, "From byte N")->check(whole_number(0, INT64_MAX))->type_name("N");
    rd->add_option("--length", *rd_length, "N bytes (default: to the end)")
        ->check(whole_number(0, INT64_MAX))
        ->type_name("N");
    rd->callback([&ctx, rd_name, rd_offset, rd_length] {
        ctx.action = [&ctx, rd_name, rd_offset, rd_length] {
            local_segments_only(ctx, "read");
            return read(*rd_name, *rd_offset, *rd_length);
        };
    });

    auto* wr = shm->add_subcommand("write", "Copy stdin into a segment (all of it must fit)");
    auto wr_name = std::make_shared<std::string>();
    auto wr_offset = std::make_shared<uint64_t>(0);
    wr->add_option("name", *wr_name, "Segment name")->required();
    wr->add_option("--offset", *wr_offset, "At byte N")->check(whole_number(0, INT64_MAX))->type_name("N");
    wr->callback([&ctx, wr_name, wr_offset] {
        ctx.action = [&ctx, wr_name, wr_offset] {
            local_segments_only(ctx, "write");
            return write(*wr_name, *wr_offset);
        };
    });

    auto* lc = shm->add_subcommand("list-create",
                                   "Create NAME holding a ShareableList of the VALUEs (JSON, or strings)");
    auto lc_o = std::make_shared<CreateOptions>();
    auto lc_words = std::make_shared<std::vector<std::string>>();
    auto lc_json = std::make_shared<std::string>();
    lc->add_option("name", lc_o->name, "Segment name")->required();
    // The VALUEs are the words after NAME, not a CLI11 list option: CLI11 splits a word of one written as
    // "[a,b]" at its commas, and a VALUE may be any word. So, as for `mpctl run`, options come first.
    lc->prefix_command();
    lc->fallthrough(false);  // the words belong to list-create, not to the root app
    add_global_options(*lc, ctx.global);
    lc->footer(
        "VALUE: 42, -1.5, true, null, text (or '\"text\"'), '{\"base64\": \"...\"}'; a word that is "
        "not JSON is a string. Options go before NAME.");
    set_usage_tail(lc, "[VALUE...]");
    lc->add_option("--values", *lc_json, "The items as one JSON array instead")->type_name("JSON");
    lc->add_option("--mode", lc_o->mode, "Permission bits, octal (default 600)")->type_name("MODE");
    lc->add_option("--owner-pid", lc_o->owner_pid,
                   "Unlink it when process PID exits (default: mpctl's parent)")
        ->check(whole_number(1, 4194304))
        ->type_name("PID");
    lc->add_option("--ttl", lc_o->ttl, "Unlink it after S instead")->type_name("S");
    lc->add_flag("--persist", lc_o->persist, "Keep it until `mpctl shm unlink`");
    lc->callback([&ctx, lc, lc_o, lc_words, lc_json] {
        *lc_words = lc->remaining();
        for (const auto& w : *lc_words) {
            for (const char* option : {"--values", "--mode", "--owner-pid", "--ttl", "--persist", "--json"}) {
                if (w == option || w.starts_with(std::string(option) + "=")) {
                    throw CliError(exit_code::usage, w + ": options go before NAME (mpctl shm list-create " +
                                                         std::string(option) + " ... NAME VALUE...)");
                }
            }
        }
        ctx.action = [&ctx, lc_o, lc_words, lc_json] {
            json params = {{"name", segment_name(lc_o->name)},
                           {"values", list_values(*lc_words, *lc_json)},
                           {"mode", lc_o->mode}};
            add_lease_params(params, *lc_o, ctx.global);
            Client client = Client::connect(ctx.global);
            json made = client.call("shm.list_create", params);
            if (ctx.global.json) {
                print_json(made);
            }
            return exit_code::ok;
        };
    });

    auto* lg = shm->add_subcommand("list-get", "Print a ShareableList's items (or item INDEX), one a line");
    auto lg_name = std::make_shared<std::string>();
    auto lg_index = std::make_shared<std::optional<int64_t>>();
    lg->add_option("name", *lg_name, "Segment name")->required();
    lg->add_option("index", *lg_index, "Only this item (from 0; negative from the end)");
    lg->callback([&ctx, lg_name, lg_index] {
        ctx.action = [&ctx, lg_name, lg_index] {
            json params = {{"name", segment_name(*lg_name)}};
            if (*lg_index) {
                params["index"] = **lg_index;
            }
            Client client = Client::connect(ctx.global);
            json got = client.call("shm.list_get", params);
            std::string out;
            if (ctx.global.json) {
                out = proto::dump_json(*lg_index ? got.at("value") : got.at("values")) + "\n";
            } else if (*lg_index) {
                out = item_text(got.at("value")) + "\n";
            } else {
                for (const auto& v : got.at("values")) {
                    out += item_text(v) + "\n";
                }
            }
            write_out(1, out);
            return exit_code::ok;
        };
    });

    auto* ls_set = shm->add_subcommand(
        "list-set", "Set item INDEX of a ShareableList (a str or bytes must fit its slot)");
    auto set_name = std::make_shared<std::string>();
    auto set_index = std::make_shared<int64_t>(0);
    auto set_value = std::make_shared<std::string>();
    ls_set->add_option("name", *set_name, "Segment name")->required();
    ls_set->add_option("index", *set_index, "Item (from 0; negative from the end)")->required();
    ls_set->add_option("value", *set_value, "The new value (JSON, or a string)")->required();
    ls_set->callback([&ctx, set_name, set_index, set_value] {
        ctx.action = [&ctx, set_name, set_index, set_value] {
            json value = list_values({*set_value}, "").at(0);
            Client client = Client::connect(ctx.global);
            json done = client.call(
                "shm.list_set", {{"name", segment_name(*set_name)}, {"index", *set_index}, {"value", value}});
            if (ctx.global.json) {
                print_json(done);
            }
            return exit_code::ok;
        };
    });

    auto* ul =
        shm->add_subcommand("unlink", "Remove a segment (registered or not); processes that map it keep it");
    auto ul_name = std::make_shared<std::string>();
    ul->add_option("name", *ul_name, "Segment name")->required();
    ul->callback([&ctx, ul_name] {
        ctx.action = [&ctx, ul_name] {
            Client client = Client::connect(ctx.global);
            json j = client.call("shm.unlink", {{"name", segment_name(*ul_name)}});
            if (ctx.global.json) {
                print_json(j);
            }
            return exit_code::ok;
        };
    });
}

}  // namespace mpctl::cli
