// The SQLite journal through its public interface: tasks, their updates, pools and environments written and
// read back. Both durabilities run the same cases.

#include <csignal>

#include "store_harness.hpp"

using namespace mpctl::test::store;

TEST_CASE("a new journal is empty and starts task ids at 1", "[unit][store]") {
    mpctl::test::TempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    auto store = open_store(dir / "mpctl.db", durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    CHECK(tasks->empty());
    auto pools = store->load_pools();
    REQUIRE(pools);
    CHECK(pools->empty());
    CHECK(store->load_next_task_id() == 1);
    CHECK(store->load_next_environment_id() == 1);
}

TEST_CASE("inserted tasks come back from a fresh open with their spec, state and times", "[unit][store]") {
    mpctl::test::TempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    const std::string path = dir / "mpctl.db";

    Task full = make_task(1, {{"argv", {"make", "-j4", "it's \"quoted\""}},
                              {"cwd", "/src"},
                              {"name", "build \xC3\xA9t\xC3\xA9"},
                              {"labels", {{"team", "infra"}, {"k", ""}}},
                              {"stdin", "in.txt"},
                              {"timeout", 30.5},
                              {"kill_after", 0},
                              {"retries", 3},
                              {"retry_delay", 0.25},
                              {"after", {7}},
                              {"pool", "gpu"},
                              {"priority", -4}});
    full.state = TaskState::failed;
    full.reason = FailReason::exit;
    full.exit_code = 3;
    full.started_at_ms = full.submitted_at_ms + 10;
    full.finished_at_ms = full.submitted_at_ms + 2500;
    full.attempts = 4;
    full.error = "exit code 3";

    Task running = make_task(2, {{"shell", "sleep 100 | cat"}});
    running.state = TaskState::running;
    running.started_at_ms = running.submitted_at_ms + 1;
    running.pid = 4242;
    running.pid_start = 987654321;
    running.attempts = 1;

    Task killed = make_task(3, {{"argv", {"crash"}}});
    killed.state = TaskState::failed;
    killed.reason = FailReason::signal;
    killed.signal = 9;
    killed.finished_at_ms = 5;

    Task pending = make_task(4, {{"argv", {"later"}}});

    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        auto r = insert(*store, loop, {&full, &running, &killed, &pending});
        INFO((r ? std::string() : r.error().message()));
        REQUIRE(r);
        store->stop();
    }

    auto store = open_store(path, durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 4);
    CHECK((*tasks)[0].id == 1);
    CHECK((*tasks)[3].id == 4);

    const Task* a = find(*tasks, 1);
    REQUIRE(a != nullptr);
    CHECK(a->state == TaskState::failed);
    CHECK(a->reason == FailReason::exit);
    CHECK(a->exit_code == 3);
    CHECK_FALSE(a->signal);
    CHECK(a->submitted_at_ms == full.submitted_at_ms);
    CHECK(a->started_at_ms == full.started_at_ms);
    CHECK(a->finished_at_ms == full.finished_at_ms);
    CHECK(a->attempts == 4);
    CHECK_FALSE(a->pid);
    CHECK(a->pid_start == 0);
    CHECK(a->error == std::optional<std::string>("exit code 3"));
    CHECK(a->spec.argv() == full.spec.argv());
    CHECK_FALSE(a->spec.shell());
    CHECK(a->spec.cwd() == "/src");
    CHECK(a->spec.name() == full.spec.name());
    CHECK(a->spec.labels() == full.spec.labels());
    CHECK(a->spec.stdin_path() == std::optional<std::string>("/src/in.txt"));
    CHECK(a->spec.timeout_s() == full.spec.timeout_s());
    CHECK(a->spec.kill_after_s() == 0.0);
    CHECK(a->spec.retries() == 3);
    CHECK(a->spec.retry_delay_s() == 0.25);
    CHECK(a->spec.after() == std::vector<int64_t>{7});
    CHECK(a->spec.pool() == "gpu");
    CHECK(a->spec.priority() == -4);
    CHECK(mpctl::proto::to_json(a->spec.expanded()) == mpctl::proto::to_json(full.spec.expanded()));

    const Task* b = find(*tasks, 2);
    REQUIRE(b != nullptr);
    CHECK(b->state == TaskState::running);
    CHECK(b->reason == FailReason::none);
    CHECK(b->pid == 4242);
    CHECK(b->pid_start == 987654321);
    CHECK(b->started_at_ms == running.started_at_ms);
    CHECK_FALSE(b->finished_at_ms);
    CHECK_FALSE(b->error);
    REQUIRE(b->spec.shell());
    CHECK(*b->spec.shell() == "sleep 100 | cat");
    CHECK(b->spec.argv().empty());

    const Task* c = find(*tasks, 3);
    REQUIRE(c != nullptr);
    CHECK(c->reason == FailReason::signal);
    CHECK(c->signal == 9);
    CHECK_FALSE(c->exit_code);
    CHECK(c->finished_at_ms == 5);

    const Task* d = find(*tasks, 4);
    REQUIRE(d != nullptr);
    CHECK(d->state == TaskState::pending);
    CHECK(d->reason == FailReason::none);
    CHECK(d->attempts == 0);
    CHECK_FALSE(d->started_at_ms);
    CHECK(d->spec.pool() == "default");

    CHECK(store->load_next_task_id() == 5);
}

TEST_CASE("task updates are journaled and the latest one wins", "[unit][store]") {
    mpctl::test::TempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    const std::string path = dir / "mpctl.db";
    Task t = make_task(1, {{"argv", {"job"}}});
    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&t}));

        t.state = TaskState::running;
        t.attempts = 1;
        t.pid = 77;
        t.pid_start = 5555;
        t.started_at_ms = t.submitted_at_ms + 3;
        store->update_task(t);
        t.state = TaskState::failed;
        t.reason = FailReason::timeout;
        t.signal = 15;
        t.pid.reset();
        t.finished_at_ms = t.submitted_at_ms + 9;
        t.error = "timed out";
        store->update_task(t);
        // Writes commit in order: once this one is done, the updates before it are too.
        REQUIRE(set_pool(*store, loop, "sync", 1));
        store->stop();
    }
    auto store = open_store(path, durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    const Task& r = tasks->front();
    CHECK(r.state == TaskState::failed);
    CHECK(r.reason == FailReason::timeout);
    CHECK(r.signal == 15);
    CHECK_FALSE(r.pid);
    CHECK(r.pid_start == 0);  // only journaled with a pid
    CHECK(r.attempts == 1);
    CHECK(r.started_at_ms == t.started_at_ms);
    CHECK(r.finished_at_ms == t.finished_at_ms);
    CHECK(r.error == std::optional<std::string>("timed out"));
    CHECK(r.spec.argv() == std::vector<std::string>{"job"});
}

TEST_CASE("stop commits the updates still queued", "[unit][store]") {
    mpctl::test::TempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    const std::string path = dir / "mpctl.db";
    Task t = make_task(1, {{"argv", {"job"}}});
    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&t}));
        t.state = TaskState::succeeded;
        t.exit_code = 0;
        t.finished_at_ms = t.submitted_at_ms + 1;
        store->update_task(t);
        store->stop();  // without running the loop again
    }
    auto store = open_store(path, durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 1);
    CHECK(tasks->front().state == TaskState::succeeded);
    CHECK(tasks->front().exit_code == 0);
}

TEST_CASE("pool sizes are journaled, the latest size per pool wins", "[unit][store]") {
    mpctl::test::TempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    auto pools = pools_after(dir / "mpctl.db", durability, [](Store& store, Loop& loop) {
        REQUIRE(set_pool(store, loop, "gpu", 2));
        REQUIRE(set_pool(store, loop, "default", 8));
        REQUIRE(set_pool(store, loop, "gpu", 4));
    });
    std::map<std::string, int> sizes;
    for (const auto& [name, row] : pools) {
        sizes[name] = row.workers;
        CHECK_FALSE(row.transient);
    }
    CHECK(sizes == std::map<std::string, int>{{"default", 8}, {"gpu", 4}});
}

TEST_CASE("transient pools are journaled as such until dropped, dropping never touches other pools",
          "[unit][store]") {
    mpctl::test::TempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    auto pools = pools_after(dir / "mpctl.db", durability, [](Store& store, Loop& loop) {
        REQUIRE(set_pool(store, loop, "gpu", 2));
        REQUIRE(set_pool(store, loop, "map-1", 3, true));
        REQUIRE(set_pool(store, loop, "map-2", 4, true));
        store.drop_transient_pool("map-1");
        store.drop_transient_pool("gpu");  // not transient: stays
    });
    REQUIRE(pools.size() == 2);
    CHECK(pools.at("gpu").workers == 2);
    CHECK_FALSE(pools.at("gpu").transient);
    CHECK(pools.at("map-2").workers == 4);
    CHECK(pools.at("map-2").transient);
}

TEST_CASE("environments are journaled once and loaded for unfinished tasks", "[unit][store]") {
    mpctl::test::TempDir dir;
    auto durability = GENERATE(Durability::full, Durability::normal);
    INFO("durability " << name_of(durability));
    const std::string path = dir / "mpctl.db";
    auto env_a = std::make_shared<const mpctl::proto::Environment>(
        mpctl::proto::Environment{{"PATH", "/bin"}, {"LANG", "C.UTF-8"}, {"EQ", "a=b"}});
    auto env_b = std::make_shared<const mpctl::proto::Environment>(mpctl::proto::Environment{{"ONLY", "b"}});

    Task pending = make_task(1, {{"argv", {"a"}}});
    pending.env_id = 3;
    Task running = make_task(2, {{"argv", {"b"}}});
    running.state = TaskState::running;
    running.env_id = 3;
    Task done = make_task(3, {{"argv", {"c"}}});
    done.state = TaskState::succeeded;
    done.env_id = 5;
    Task own = make_task(4, {{"argv", {"d"}}});  // the daemon's environment
    {
        Loop loop;
        auto store = open_store(path, durability);
        store->start(loop.io);
        REQUIRE(insert(*store, loop, {&pending, &running, &done, &own},
                       {Environments::Entry{3, env_a}, Environments::Entry{5, env_b}}));
        store->stop();
    }
    auto store = open_store(path, durability);
    auto tasks = store->load_tasks();
    REQUIRE(tasks);
    REQUIRE(tasks->size() == 4);
    CHECK(find(*tasks, 1)->env_id == 3);
    CHECK(find(*tasks, 2)->env_id == 3);
    CHECK(find(*tasks, 3)->env_id == 5);
    CHECK(find(*tasks, 4)->env_id == 0);
    for (const auto& t : *tasks) {
        CHECK_FALSE(t.spec.env());  // the spec row carries no environment
    }
    auto envs = store->load_environments();
    REQUIRE(envs);
    REQUIRE(envs->size() == 1);  // only the one unfinished tasks use
    REQUIRE(envs->contains(3));
    CHECK(*envs->at(3) == *env_a);
    CHECK(store->load_next_environment_id() == 6);
}

TEST_CASE("a running task's pid and its process's start time are journaled together", "[unit][store]") {
    mpctl::test::TempDir dir;
    Task r = journaled_after(dir / "mpctl.db", make_task(1, {{"argv", {"job"}}}), [](Store& store, Task& t) {
        t.state = TaskState::running;
        t.attempts = 1;
        t.pid = 77;
        t.pid_start = uint64_t{1} << 40;  // past 32 bits: a machine up for years at 100 Hz is not
        store.update_task(t);
    });
    CHECK(r.pid == 77);
    CHECK(r.pid_start == uint64_t{1} << 40);
}

TEST_CASE("a running pipeline's stages are journaled with their pids, start times and ended statuses",
          "[unit][store]") {
    mpctl::test::TempDir dir;
    Task r = journaled_after(dir / "mpctl.db", make_task(1, {{"pipeline", {{"gen"}, {"filter"}, {"sink"}}}}),
                             [](Store& store, Task& t) {
                                 t.state = TaskState::running;
                                 t.attempts = 1;
                                 t.pid = 70;
                                 t.pid_start = 700;
                                 t.stages = {
                                     Task::StageRun{70, true, std::nullopt, SIGPIPE, 700},
                                     Task::StageRun{71, false, std::nullopt, std::nullopt, uint64_t{1} << 40},
                                     Task::StageRun{72, false, std::nullopt, std::nullopt, 702}};
                                 store.task_progressed(t);  // a stage's end, which only the journal hears of
                             });
    const auto& stages = r.stages;
    REQUIRE(stages.size() == 3);
    CHECK(stages[0].pid == 70);
    CHECK(stages[0].exited);
    CHECK(stages[0].signal == SIGPIPE);
    CHECK(stages[1].pid == 71);
    CHECK_FALSE(stages[1].exited);
    CHECK(stages[1].start == uint64_t{1} << 40);
    CHECK(stages[2].start == 702);
}
