// mpctl sem | event | barrier: the daemon's named semaphores (leased like locks), events and barriers, for
// shell scripts that have none (the daemon's sem.*, event.*, barrier.* methods).

#include <unistd.h>

#include <mpctl/cli/app.hpp>
#include <mpctl/cli/cli_error.hpp>
#include <mpctl/cli/output.hpp>

namespace mpctl::cli {

using nlohmann::json;

namespace {

// Prints RESULT's KEY array: NDJSON with --json, else ROW(entry) per entry under HEADER.
template <class Row>
int print_list(AppContext& ctx, const json& result, const char* key, std::vector<std::string> header,
               Row row) {
    if (ctx.global.json) {
        for (const auto& e : result.at(key)) {
            print_json(e);
        }
        return exit_code::ok;
    }
    std::vector<std::vector<std::string>> rows{std::move(header)};
    for (const auto& e : result.at(key)) {
        rows.push_back(row(e));
    }
    if (rows.size() > 1) {
        write_out(1, format_table(rows, std::vector<bool>(rows[0].size(), false)));
    }
    return exit_code::ok;
}

int call_and_print(AppContext& ctx, const char* method, const json& params) {
    Client client = Client::connect(ctx.global);
    json result = client.call(method, params);
    if (ctx.global.json) {
        print_json(result);
    }
    return exit_code::ok;
}

json with_timeout(json params, const std::string& timeout) {
    if (!timeout.empty()) {
        params["timeout"] = parse_seconds(timeout, "--timeout");
    }
    return params;
}

json name_param(const std::string& name) {
    return name.empty() ? json::object() : json{{"name", name}};
}

struct SemOptions {
    std::string name;
    int64_t limit = 0;
    bool nonblock = false;
    std::string timeout;
    int64_t owner_pid = 0;
    std::string ttl;
};

void add_sem_commands(CLI::App& app, AppContext& ctx) {
    auto* sem = app.add_subcommand("sem", "Named counting semaphores, leased like locks");
    sem->require_subcommand(1);
    auto* acq = sem->add_subcommand("acquire", "Take one unit of NAME (at most --limit held at once)");
    auto o = std::make_shared<SemOptions>();
    acq->add_option("name", o->name, "Semaphore name")->required();
    acq->add_option("--limit", o->limit, "How many units it has (fixed while it is in use)")
        ->required()
        ->check(whole_number(1, 1000000))
        ->type_name("N");
    acq->add_flag("-n,--nonblock", o->nonblock, "Fail at once (exit 5) if none is free");
    acq->add_option("-w,--timeout", o->timeout, "Give up after S (exit 124)")->type_name("S");
    acq->add_option("--owner-pid", o->owner_pid, "Lease it to process PID (default: mpctl's parent)")
        ->check(whole_number(1, 4194304))
        ->type_name("PID");
    acq->add_option("--ttl", o->ttl, "Lease it for S instead")->type_name("S");
    acq->callback([&ctx, o] {
        ctx.action = [&ctx, o] {
            if (o->nonblock && !o->timeout.empty()) {
                throw CliError(exit_code::usage, "--nonblock and --timeout: one or the other");
            }
            json params =
                with_timeout({{"name", o->name}, {"limit", o->limit}, {"nonblock", o->nonblock}}, o->timeout);
            if (auto pid = lease_pid(ctx.global, o->owner_pid, !o->ttl.empty())) {
                params["pid"] = *pid;
            }
            if (!o->ttl.empty()) {
                params["ttl"] = parse_seconds(o->ttl, "--ttl");
            }
            return call_and_print(ctx, "sem.acquire", params);
        };
    });
    auto* rel = sem->add_subcommand("release", "Give back one unit of NAME held by the calling shell");
    auto r = std::make_shared<SemOptions>();
    rel->add_option("name", r->name, "Semaphore name")->required();
    rel->add_option("--owner-pid", r->owner_pid, "The unit held for process PID (default: mpctl's parent)")
        ->check(whole_number(1, 4194304))
        ->type_name("PID");
    rel->callback([&ctx, r] {
        ctx.action = [&ctx, r] {
            json params = {{"name", r->name}};
            if (auto pid = release_pid(ctx.global, r->owner_pid)) {
                params["pid"] = *pid;
            }
            return call_and_print(ctx, "sem.release", params);
        };
    });
    auto* ls = sem->add_subcommand("list", "Semaphores in use: holders and waiters");
    auto ls_name = std::make_shared<std::string>();
    ls->add_option("name", *ls_name, "Only this one");
    ls->callback([&ctx, ls_name] {
        ctx.action = [&ctx, ls_name] {
            Client client = Client::connect(ctx.global);
            json result = client.call("sem.list", name_param(*ls_name));
            return print_list(
                ctx, result, "semaphores", {"NAME", "LIMIT", "HELD", "WAITING", "HOLDERS"},
                [](const json& s) {
                    std::string pids;
                    for (const auto& h : s.at("holders")) {
                        pids += (pids.empty() ? "" : ",") + std::to_string(h.at("pid").get<int64_t>());
                    }
                    return std::vector<std::string>{
                        s.at("name").get<std::string>(), std::to_string(s.at("limit").get<int>()),
                        std::to_string(s.at("holders").size()), std::to_string(s.at("waiters").size()), pids};
                });
        };
    });
}

void add_event_commands(CLI::App& app, AppContext& ctx) {
    auto* event = app.add_subcommand("event", "Named events: set, clear, wait until set");
    event->require_subcommand(1);
    for (const char* verb : {"set", "clear"}) {
        auto* sub =
            event->add_subcommand(verb, std::string(verb) == "set" ? "Set NAME: every waiter goes on"
                                                                   : "Clear NAME: waiters wait again");
        auto name = std::make_shared<std::string>();
        sub->add_option("name", *name, "Event name")->required();
        std::string method = std::string("event.") + verb;
        sub->callback([&ctx, name, method] {
            ctx.action = [&ctx, name, method] {
                return call_and_print(ctx, method.c_str(), {{"name", *name}});
            };
        });
    }
    auto* wait = event->add_subcommand("wait", "Block until NAME is set (at once if it is)");
    auto name = std::make_shared<std::string>();
    auto timeout = std::make_shared<std::string>();
    wait->add_option("name", *name, "Event name")->required();
    wait->add_option("-w,--timeout", *timeout, "Give up after S (exit 124)")->type_name("S");
    wait->callback([&ctx, name, timeout] {
        ctx.action = [&ctx, name, timeout] {
            return call_and_print(ctx, "event.wait", with_timeout({{"name", *name}}, *timeout));
        };
    });
    auto* ls = event->add_subcommand("list", "Events that are set or waited for");
    auto ls_name = std::make_shared<std::string>();
    ls->add_option("name", *ls_name, "Only this one");
    ls->callback([&ctx, ls_name] {
        ctx.action = [&ctx, ls_name] {
            Client client = Client::connect(ctx.global);
            json result = client.call("event.list", name_param(*ls_name));
            return print_list(ctx, result, "events", {"NAME", "SET", "WAITERS"}, [](const json& e) {
                return std::vector<std::string>{e.at("name").get<std::string>(),
                                                e.at("set").get<bool>() ? "yes" : "no",
                                                std::to_string(e.at("waiters").get<int64_t>())};
            });
        };
    });
}

void add_barrier_commands(CLI::App& app, AppContext& ctx) {
    auto* barrier = app.add_subcommand("barrier", "Named barriers: wait until N parties have arrived");
    barrier->require_subcommand(1);
    auto* wait =
        barrier->add_subcommand("wait", "Block until --parties N waiters are at NAME; print my index");
    auto name = std::make_shared<std::string>();
    auto parties = std::make_shared<int64_t>(0);
    auto timeout = std::make_shared<std::string>();
    wait->add_option("name", *name, "Barrier name")->required();
    wait->add_option("--parties", *parties, "How many must arrive")
        ->required()
        ->check(whole_number(1, 1000000))
        ->type_name("N");
    wait->add_option("-w,--timeout", *timeout,
                     "Give up after S (exit 124), breaking the barrier for the others (exit 1)")
        ->type_name("S");
    wait->callback([&ctx, name, parties, timeout] {
        ctx.action = [&ctx, name, parties, timeout] {
            Client client = Client::connect(ctx.global);
            json result =
                client.call("barrier.wait", with_timeout({{"name", *name}, {"parties", *parties}}, *timeout));
            if (ctx.global.json) {
                print_json(result);
            } else {
                write_out(1, std::to_string(result.at("index").get<int64_t>()) + "\n");
            }
            return exit_code::ok;
        };
    });
    auto* ls = barrier->add_subcommand("list", "Barriers being waited at");
    auto ls_name = std::make_shared<std::string>();
    ls->add_option("name", *ls_name, "Only this one");
    ls->callback([&ctx, ls_name] {
        ctx.action = [&ctx, ls_name] {
            Client client = Client::connect(ctx.global);
            json result = client.call("barrier.list", name_param(*ls_name));
            return print_list(ctx, result, "barriers", {"NAME", "PARTIES", "ARRIVED"}, [](const json& b) {
                return std::vector<std::string>{b.at("name").get<std::string>(),
                                                std::to_string(b.at("parties").get<int>()),
                                                std::to_string(b.at("waiting").size())};
            });
        };
    });
}

}  // namespace

void add_sync_commands(CLI::App& app, AppContext& ctx, std::string_view only) {
    if (wanted(only, "sem")) {
        add_sem_commands(app, ctx);
    }
    if (wanted(only, "event")) {
        add_event_commands(app, ctx);
    }
    if (wanted(only, "barrier")) {
        add_barrier_commands(app, ctx);
    }
}

}  // namespace mpctl::cli
