// mpctl submit / mpctl run: queue a task (a future); run also waits, streams its output live and exits
// with its code.

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <utility>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/log_positions.hpp>
#include <mpctl/cli/output.hpp>
#include <mpctl/cli/reconnect.hpp>
#include <mpctl/cli/signal_pipe.hpp>
#include <mpctl/cli/task_options.hpp>
#include <mpctl/common/base64.hpp>
#include <mpctl/common/sys.hpp>
#include <mpctl/proto/task_status.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

json submit_spec(Client& client, const TaskRequest& request);

int submit(AppContext& ctx, const TaskOptions& options, const std::vector<std::string>& command) {
    TaskRequest request = build_task_spec(options, command);
    Client client = Client::connect(ctx.global);
    if (request.passes_stdin()) {
        client.pass_fd_with_next_request(STDIN_FILENO);
    }
    json status = submit_spec(client, request);
    if (ctx.global.json) {
        print_json(status);
    } else {
        write_out(1, std::to_string(status.at("id").get<int64_t>()) + "\n");
    }
    return exit_code::ok;
}

// task.submit of REQUEST; a refusal is said in the words of the options that built it.
json submit_spec(Client& client, const TaskRequest& request) {
    try {
        return client.call_text("task.submit", request.params_text());
    } catch (const CliError& e) {
        throw in_option_words(e);
    }
}

// On a terminal, a run that does not start at once says why: what it waits for, or how busy its pool is.
void say_why_pending(Client& client, const json& task) {
    int64_t id = task.at("id").get<int64_t>();
    if (const auto& after = task.value("after", json::array()); !after.empty()) {
        std::string ids;
        for (const auto& a : after) {
            ids += (ids.empty() ? "" : ", ") + a.dump();
        }
        std::fprintf(stderr, "mpctl: task %lld waits for task %s, then for a worker of pool %s\n",
                     static_cast<long long>(id), ids.c_str(),
                     task.value("pool", std::string("default")).c_str());
        return;
    }
    std::string pool = task.value("pool", std::string("default"));
    json pools;
    try {
        pools = client.call("pool.list", json::object());
    } catch (const CliError&) {
        return;  // a remote token without pool.list: the run goes on, unexplained
    }
    for (const auto& p : pools.at("pools")) {
        if (p.value("name", std::string()) == pool) {
            std::fprintf(stderr, "mpctl: task %lld queued in pool %s (%d/%d busy, %d queued)\n",
                         static_cast<long long>(id), pool.c_str(), p.value("running", 0),
                         p.value("workers", 0), p.value("pending", 0));
            return;
        }
    }
}

// Thrown out of the output stream when nobody reads mpctl's output any more.
struct OutputClosed {};

int run(AppContext& ctx, const TaskOptions& options, const std::vector<std::string>& command) {
    TaskRequest request = build_task_spec(options, command);
    // The task belongs to this run, as a shell's job to its terminal: if mpctl goes away first (killed, its
    // connection lost), the daemon hangs the task up (SIGHUP; cancelled if it has not started).
    request.spec["attached"] = true;
    Client client = Client::connect(ctx.global);
    // Signals that reach a foreground `mpctl run` are forwarded to the task (see signal_pipe.hpp). A closed
    // stdout is an EPIPE to act on, not a SIGPIPE that would end mpctl before it could.
    int signals = install_signal_pipe({SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM});
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);
    if (request.passes_stdin()) {
        client.pass_fd_with_next_request(STDIN_FILENO);
    }
    json submitted = submit_spec(client, request);
    int64_t id = submitted.at("id").get<int64_t>();
    if (submitted.value("state", std::string()) == "pending" && !ctx.global.json && ::isatty(2) == 1) {
        say_why_pending(client, submitted);
    }

    // First Ctrl-C: SIGINT to the task's process group, as a terminal would. A second one, or the grace
    // (--kill-after, default 5 s) running out while the task ignores the first: SIGKILL.
    unsigned grace_s = 5;
    if (auto k = request.spec.find("kill_after"); k != request.spec.end()) {
        grace_s = static_cast<unsigned>(std::max(1.0, std::ceil(k->get<double>())));
    }
    int interrupts = 0;
    int stopped_by = 0;  // the first signal that asked the task to stop
    client.set_interrupt(signals, [&] {
        for (int signo : take_signals(signals)) {
            if (signo == SIGALRM) {
                signo = SIGKILL;
            } else if (signo == SIGINT && ++interrupts > 1) {
                signo = SIGKILL;
            } else if (signo == SIGINT) {
                ::alarm(grace_s);
            }
            if (stopped_by == 0) {
                stopped_by = signo;
                // A task still queued would get the signal only once it starts: it never starts instead.
                // Asked first, so that a task starting meanwhile still gets the signal below.
                client.send("task.cancel", {{"id", id}, {"force", false}});
            }
            client.send("task.signal", {{"id", id}, {"signal", signo}});
        }
    });

    std::string out_text, err_text;
    int shown_attempt = 1;
    const int retries = submitted.value("retries", 0);
    const bool tells_attempts = retries > 0 && ::isatty(2) == 1;
    json result;
    // Once submitted, the task is waited for through a daemon that dies and comes back (reconnect.hpp):
    // the stream goes on where it was ("from"), so every byte is printed once. The submit itself is never
    // sent again.
    Reconnector reconnector(ctx.global);
    LogPositions positions;
    json logs_params = {{"id", id}, {"stream", "both"}, {"follow", true}, {"from", json::array()}};
    bool reconnected = false;
    try {
        result = retrying(client, reconnector, [&] {
            if (std::exchange(reconnected, true)) {
                // The task belonged to the lost connection (attached): it belongs to this one now, so that
                // mpctl dying from here on still hangs it up. A daemon without task.attach (an older one)
                // leaves it unattached.
                try {
                    (void)client.call("task.attach", {{"id", id}});
                } catch (const ConnectionLost&) {
                    throw;
                } catch (const CliError&) {
                }
            }
            logs_params["from"] = positions.from();
            return client.call("task.logs", logs_params, [&](const std::string& method, const json& params) {
                if (method != "task.output") {
                    return;
                }
                auto data = common::base64_decode(params.value("data", std::string()));
                if (!data) {
                    return;
                }
                positions.saw(params, data->size());
                bool is_err = params.value("stream", std::string()) == "stderr";
                if (int attempt = params.value("attempt", 1); attempt != shown_attempt) {
                    // A retry: --json keeps the last attempt's output (the result's,
                    // as `mpctl result` gives it); a person is told where it begins.
                    shown_attempt = attempt;
                    out_text.clear();
                    err_text.clear();
                    if (!ctx.global.json && tells_attempts) {
                        std::fprintf(stderr, "mpctl: task %lld: attempt %d of %d\n",
                                     static_cast<long long>(id), attempt, retries + 1);
                    }
                }
                if (ctx.global.json) {
                    (is_err ? err_text : out_text) += *data;
                    return;
                }
                auto written = common::write_all(is_err ? 2 : 1, *data);
                if (!written && written.error().err == EPIPE) {
                    // `mpctl run -- yes | head -1`: the task gets what a writer to a
                    // closed pipe gets, and mpctl exits as a shell reports it.
                    client.send("task.signal", {{"id", id}, {"signal", SIGPIPE}});
                    throw OutputClosed{};
                }
            });
        });
    } catch (const OutputClosed&) {
        // As a shell waits for the writer it sent SIGPIPE to die. One that ignores it is hung up when mpctl
        // leaves (SIGHUP); waiting less would let that SIGHUP, the lower signal, be taken first.
        try {
            (void)client.call("task.wait", {{"id", id}, {"timeout", grace_s}});
        } catch (const CliError&) {
            // The connection is gone: the daemon hangs the task up.
        }
        return 128 + SIGPIPE;
    }
    proto::TaskStatus status = proto::status_from_json(result.at("task"));
    if (ctx.global.json) {
        json j = result.at("task");
        j["stdout"] = out_text;
        j["stderr"] = err_text;
        print_json(j);
    } else if (auto said = unexplained_end(status); !said.empty()) {
        write_out(2, said);
    } else if (status.state == proto::TaskState::cancelled && stopped_by == 0) {
        std::fprintf(stderr, "mpctl: task %lld was cancelled\n", static_cast<long long>(id));
    }
    if (status.state == proto::TaskState::cancelled && stopped_by != 0 && !status.started_at_ms) {
        return 128 + stopped_by;  // Ctrl-C before it started: as a shell's command that never ran
    }
    return proto::mirror_exit_code(status);
}

void add_submit_like(CLI::App& app, AppContext& ctx, const char* name, const char* help, bool wait) {
    auto* sub = app.add_subcommand(name, help);
    auto options = std::make_shared<TaskOptions>();
    add_task_options(sub, *options);
    add_pipe_option(sub, *options);
    // Everything from the first word that is not an option of ours is the command (like env(1), nice(1)).
    sub->prefix_command();
    sub->fallthrough(false);  // its words belong to the command, not to the root app
    add_global_options(*sub, ctx.global);
    sub->footer(std::string("Example: mpctl ") + name + " --timeout 30 -- make -j4");
    set_usage_tail(sub, "[--] CMD [ARG...]");
    sub->callback([&ctx, sub, options, wait] {
        auto command = command_words(sub, ctx);
        ctx.action = [&ctx, options, command, wait] {
            return wait ? run(ctx, *options, command) : submit(ctx, *options, command);
        };
    });
}

}  // namespace

void add_task_submit_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    if (wanted(only, "submit")) {
        add_submit_like(app, ctx, "submit", "Queue a task and print its id (the future)", false);
    }
    if (wanted(only, "run")) {
        add_submit_like(app, ctx, "run", "Run a task, stream its output, exit with its code", true);
    }
}

}  // namespace mpctl::cli
