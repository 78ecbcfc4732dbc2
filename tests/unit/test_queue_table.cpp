// QueueTable (daemon/manager/queue_table.hpp) without a daemon: a FakeJournal that holds every commit until
// the test ends it (ok or failed), FakeTimers, and callers that are real Sessions over socketpairs, so that
// what each request is answered, and when, can be read. Values are JSON texts, given and answered as such.

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/daemon/manager/queue_table.hpp>
#include <mpctl/daemon/manager/value_budget.hpp>
#include <mpctl/proto/errors.hpp>

#include "fake_journal.hpp"
#include "responder_harness.hpp"
#include "scheduler_harness.hpp"

namespace queue_table_tests {

using mpctl::daemon::QueueRow;
using mpctl::daemon::QueueTable;
using mpctl::daemon::ValueBudget;
using mpctl::proto::ErrorCode;
using mpctl::proto::RequestError;
using mpctl::test::manager::FakeJournal;
using mpctl::test::responders::Caller;
using mpctl::test::responders::refusal;
using mpctl::test::responders::Wire;
using mpctl::test::scheduler::FakeTimers;
using nlohmann::json;
using Kind = FakeJournal::Kind;
using namespace std::chrono_literals;

struct PutOptions {
    std::optional<int64_t> maxsize;
    std::optional<bool> memory;
    bool nonblock = false;
    std::optional<std::chrono::milliseconds> timeout;
};
// A put's first-use options.
PutOptions opts(std::optional<int64_t> maxsize, std::optional<bool> memory = std::nullopt) {
    PutOptions o;
    o.maxsize = maxsize;
    o.memory = memory;
    return o;
}
PutOptions nonblocking() {
    PutOptions o;
    o.nonblock = true;
    return o;
}
PutOptions timing_out(std::chrono::milliseconds timeout) {
    PutOptions o;
    o.timeout = timeout;
    return o;
}

struct QueueWorld {
    Wire wire;  // first: it outlives the table, whose responders' sessions it holds
    FakeJournal journal;
    FakeTimers timers;
    ValueBudget budget;
    QueueTable table{journal, timers, budget};

    explicit QueueWorld(uint64_t max_bytes = uint64_t{1} << 30) : budget(max_bytes) {}

    Caller put(const std::string& name, std::vector<std::string> values, PutOptions o = {}) {
        Caller c = wire.caller();
        QueueTable::Put r;
        r.name = name;
        r.values = std::move(values);
        r.maxsize = o.maxsize;
        r.memory = o.memory;
        r.nonblock = o.nonblock;
        r.timeout = o.timeout;
        table.put(std::move(r), c.responder());
        return c;
    }
    Caller get(const std::string& name, size_t count = 1, bool nonblock = false,
               std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
        Caller c = wire.caller();
        QueueTable::Get r;
        r.name = name;
        r.count = count;
        r.nonblock = nonblock;
        r.timeout = timeout;
        table.get(r, c.responder());
        return c;
    }
    json info(const std::string& name) const { return table.info(name); }
    size_t length(const std::string& name) const { return info(name)["length"].get<size_t>(); }
    // The values a committed get answered, as JSON.
    static json values(const Caller& c) { return c.result()["values"]; }
    // The seqs the journal's last write of KIND names (delete_items: seqs; insert_items: items' seqs).
    std::vector<int64_t> last_seqs(Kind kind) const {
        for (auto it = journal.log.rbegin(); it != journal.log.rend(); ++it) {
            if ((*it)->kind != kind) {
                continue;
            }
            if (kind == Kind::delete_items) {
                return (*it)->seqs;
            }
            std::vector<int64_t> out;
            for (const auto& [seq, value] : (*it)->items) {
                out.push_back(seq);
            }
            return out;
        }
        FAIL("no such write");
        return {};
    }
};

}  // namespace queue_table_tests

using namespace queue_table_tests;

TEST_CASE("queue table: values come out in the order they went in, across puts and gets, as the texts given",
          "[unit][queue]") {
    QueueWorld w;
    auto p1 = w.put("q", {"1", R"("two")"});
    w.journal.commit();
    CHECK(p1.result() == json{{"name", "q"}, {"put", 2}, {"length", 2}});
    auto p2 = w.put("q", {R"({"b":1,"a":[true,null]})", "1.0"});
    w.journal.commit();
    CHECK(p2.result() == json{{"name", "q"}, {"put", 2}, {"length", 4}});

    auto g1 = w.get("q");
    w.journal.commit();
    CHECK_THAT(g1.answer_line(),
               Catch::Matchers::Contains(R"("result":{"name":"q","values":[1],"length":3})"));
    auto g2 = w.get("q", 3);
    w.journal.commit();
    // Member order and 1.0 kept: the values are the texts that were put, not re-encoded.
    CHECK_THAT(g2.answer_line(),
               Catch::Matchers::Contains(R"("values":["two",{"b":1,"a":[true,null]},1.0],"length":0})"));

    CHECK(w.journal.kinds() ==
          std::vector<Kind>{Kind::insert_items, Kind::insert_items, Kind::delete_items, Kind::delete_items});
    CHECK(w.last_seqs(Kind::insert_items) == std::vector<int64_t>{3, 4});
    CHECK(w.last_seqs(Kind::delete_items) == std::vector<int64_t>{2, 3, 4});
    CHECK(w.journal.queue_items("q").empty());
    CHECK(w.length("q") == 0);
    CHECK(w.budget.used() == 0);
}

TEST_CASE("queue table: a durable put's values are invisible to gets until its commit", "[unit][queue]") {
    QueueWorld w;
    auto p = w.put("q", {"7"});
    CHECK_FALSE(p.answered());
    CHECK(w.length("q") == 0);
    CHECK(w.info("q")["durable"] == true);
    auto e = refusal([&] { (void)w.get("q", 1, true); });
    CHECK(e.code() == ErrorCode::busy);
    CHECK(e.data()["length"] == 0);

    w.journal.commit();
    CHECK(p.result()["length"] == 1);
    CHECK(w.length("q") == 1);
    CHECK(w.journal.queue_items("q") == std::vector<std::pair<int64_t, std::string>>{{1, "7"}});
    // A get is answered after the commit that takes its values out of the journal.
    auto g = w.get("q", 1, true);
    CHECK_FALSE(g.answered());
    CHECK(w.length("q") == 0);
    w.journal.commit();
    CHECK(g.result() == json{{"name", "q"}, {"values", {7}}, {"length", 0}});
}

TEST_CASE("queue table: a get parked on an empty queue is handed a put's values, with no journal write",
          "[unit][queue]") {
    QueueWorld w;
    auto g = w.get("q");
    CHECK_FALSE(g.answered());
    json parked = w.info("q");  // only waited on: listed, not durable, no creation time
    CHECK(parked["getters"] == 1);
    CHECK(parked["durable"] == false);
    CHECK(parked["created_at"].is_null());

    // Delivered before the put is answered, the value needs no journal: an answered put's values are
    // delivered once either way.
    auto p = w.put("q", {R"("x")"});
    CHECK(g.result() == json{{"name", "q"}, {"values", {"x"}}, {"length", 0}});
    CHECK(p.result() == json{{"name", "q"}, {"put", 1}, {"length", 0}});
    CHECK(w.journal.kinds().empty());
    CHECK(w.info("q")["getters"] == 0);
    CHECK(w.info("q")["durable"] == true);
    CHECK(w.budget.used() == 0);
}

TEST_CASE("queue table: a get for more than a put brings waits for values that went through the journal",
          "[unit][queue]") {
    QueueWorld w;
    auto g = w.get("q", 2);
    auto p = w.put("q", {"1"});
    CHECK_FALSE(g.answered());
    CHECK(w.journal.pending() == 1);
    w.journal.commit();
    CHECK(p.result() == json{{"name", "q"}, {"put", 1}, {"length", 1}});
    // The queue is not empty now: the next value goes in behind the first, through the journal.
    auto p2 = w.put("q", {"2"});
    CHECK_FALSE(g.answered());
    w.journal.commit();
    CHECK(p2.result()["length"] == 2);
    CHECK_FALSE(g.answered());  // its values are being taken out of the journal
    CHECK(w.journal.kinds() == std::vector<Kind>{Kind::insert_items, Kind::insert_items, Kind::delete_items});
    w.journal.commit();
    CHECK(g.result() == json{{"name", "q"}, {"values", {1, 2}}, {"length", 0}});
}

TEST_CASE("queue table: a put hands the values a waiting get asks for and journals the rest, in order",
          "[unit][queue]") {
    QueueWorld w;
    auto g = w.get("q", 2);
    auto p = w.put("q", {"1", "2", "3"});
    CHECK(QueueWorld::values(g) == json{1, 2});
    CHECK_FALSE(p.answered());  // its third value is being committed
    w.journal.commit();
    CHECK(p.result() == json{{"name", "q"}, {"put", 3}, {"length", 1}});
    CHECK(w.journal.queue_items("q").size() == 1);
    auto next = w.get("q");
    w.journal.commit();
    CHECK(QueueWorld::values(next) == json{3});
}

TEST_CASE("queue table: gets are served in arrival order, a get for 1 waits behind a get for 3",
          "[unit][queue]") {
    QueueWorld w;
    auto g3 = w.get("q", 3);
    auto g1 = w.get("q", 1);
    auto p1 = w.put("q", {"1"});
    w.journal.commit();
    CHECK(p1.result()["length"] == 1);
    CHECK_FALSE(g3.answered());
    CHECK_FALSE(g1.answered());  // one value is there, but the get for 3 came first
    CHECK(w.info("q")["getters"] == 2);
    // Nor can a nonblocking get pass them.
    CHECK(refusal([&] { (void)w.get("q", 1, true); }).code() == ErrorCode::busy);

    auto p2 = w.put("q", {"2", "3", "4"});
    w.journal.commit();
    CHECK(w.info("q")["getters"] == 0);
    w.journal.commit_all();
    CHECK(QueueWorld::values(g3) == json{1, 2, 3});
    CHECK(QueueWorld::values(g1) == json{4});
    CHECK(w.length("q") == 0);
}

TEST_CASE("queue table: a nonblocking get of an empty or unknown queue is busy", "[unit][queue]") {
    QueueWorld w;
    auto unknown = refusal([&] { (void)w.get("nowhere", 1, true); });
    CHECK(unknown.code() == ErrorCode::busy);
    CHECK(unknown.data() == json{{"name", "nowhere"}, {"length", 0}});
    CHECK_THAT(unknown.what(), Catch::Matchers::Contains("nothing was ever put"));
    CHECK(w.table.list().empty());  // and it made no queue

    w.put("q", {"1"});
    w.journal.commit();
    auto short_of = refusal([&] { (void)w.get("q", 2, true); });
    CHECK(short_of.code() == ErrorCode::busy);
    CHECK(short_of.data()["length"] == 1);
    CHECK(w.length("q") == 1);  // took nothing
    auto g = w.get("q", 1, true);
    w.journal.commit();
    CHECK(QueueWorld::values(g) == json{1});
    auto empty = refusal([&] { (void)w.get("q", 1, true); });
    CHECK(empty.code() == ErrorCode::busy);
    CHECK(empty.data()["length"] == 0);
    CHECK(w.journal.count(Kind::delete_items) == 1);
}

TEST_CASE(
    "queue table: a put that does not fit its maxsize waits, and goes in once a get's commit frees room",
    "[unit][queue]") {
    QueueWorld w;
    auto a = w.put("q", {"1", "2"}, opts(2));
    w.journal.commit();
    CHECK(a.result()["length"] == 2);
    auto b = w.put("q", {"3"});  // the queue's maxsize: none named is fine
    CHECK_FALSE(b.answered());
    CHECK(w.info("q")["putters"] == 1);
    CHECK(w.journal.pending() == 0);

    auto g = w.get("q");
    // The value being taken still holds its room until the get's commit ends.
    CHECK(w.info("q")["putters"] == 1);
    CHECK(w.journal.kinds().back() == Kind::delete_items);
    w.journal.commit();
    CHECK(g.result() == json{{"name", "q"}, {"values", {1}}, {"length", 1}});
    CHECK(w.info("q")["putters"] == 0);
    CHECK(w.journal.kinds().back() == Kind::insert_items);
    CHECK_FALSE(b.answered());  // being committed
    w.journal.commit();
    CHECK(b.result() == json{{"name", "q"}, {"put", 1}, {"length", 2}});
    CHECK(w.journal.queue_items("q") == std::vector<std::pair<int64_t, std::string>>{{2, "2"}, {3, "3"}});
}

TEST_CASE("queue table: the values of puts and gets being committed hold their room", "[unit][queue]") {
    QueueWorld w;
    auto a = w.put("q", {R"("a")"}, opts(2));
    auto bc = w.put("q", {R"("b")", R"("c")"});  // one value held by a's commit: room for one only
    CHECK(w.info("q")["putters"] == 1);
    w.journal.commit();
    CHECK(a.result()["length"] == 1);
    CHECK_FALSE(bc.answered());
    CHECK(w.info("q")["putters"] == 1);

    auto g = w.get("q");  // a's value leaves the queue but holds its room until the commit
    CHECK(w.length("q") == 0);
    CHECK(w.info("q")["putters"] == 1);
    w.journal.commit();
    CHECK(QueueWorld::values(g) == json{"a"});
    w.journal.commit();
    CHECK(bc.result() == json{{"name", "q"}, {"put", 2}, {"length", 2}});
}

TEST_CASE("queue table: a nonblocking put into a full queue is busy and puts nothing", "[unit][queue]") {
    QueueWorld w;
    w.put("q", {"1", "2"}, opts(2));
    w.journal.commit();
    size_t writes = w.journal.log.size();
    uint64_t used = w.budget.used();
    auto e = refusal([&] { (void)w.put("q", {"3"}, nonblocking()); });
    CHECK(e.code() == ErrorCode::busy);
    CHECK(e.data() == json{{"name", "q"}, {"length", 2}, {"maxsize", 2}});
    CHECK(w.journal.log.size() == writes);
    CHECK(w.budget.used() == used);
    CHECK(w.length("q") == 2);
    CHECK(w.info("q")["putters"] == 0);
}

TEST_CASE("queue table: more values than maxsize can never fit, and are invalid_params", "[unit][queue]") {
    QueueWorld w;
    auto first = refusal([&] { (void)w.put("q", {"1", "2"}, opts(1)); });
    CHECK(first.code() == ErrorCode::invalid_params);
    CHECK(w.table.list().empty());  // the queue was not made
    CHECK(w.budget.used() == 0);

    w.put("q", {"1"}, opts(2));
    w.journal.commit();
    auto later = refusal([&] { (void)w.put("q", {"1", "2", "3"}); });
    CHECK(later.code() == ErrorCode::invalid_params);
    CHECK(w.length("q") == 1);
    CHECK(w.info("q")["putters"] == 0);
    CHECK(w.budget.used() == 1);
    CHECK(w.journal.log.size() == 1);
}

TEST_CASE("queue table: a later put naming another maxsize or memory than the queue has is invalid_state",
          "[unit][queue]") {
    QueueWorld w;
    w.put("q", {"1"}, opts(5));
    w.journal.commit();
    auto other_max = refusal([&] { (void)w.put("q", {"2"}, opts(6)); });
    CHECK(other_max.code() == ErrorCode::invalid_state);
    CHECK(other_max.data() == json{{"name", "q"}, {"maxsize", 5}, {"memory", false}});
    CHECK(refusal([&] { (void)w.put("q", {"2"}, opts(std::nullopt, true)); }).code() ==
          ErrorCode::invalid_state);
    CHECK(w.budget.used() == 1);
    CHECK(w.journal.log.size() == 1);
    // The same ones, or none, are fine.
    auto same = w.put("q", {"2"}, opts(5, false));
    auto none = w.put("q", {"3"});
    w.journal.commit_all();
    CHECK(same.result()["length"] == 2);
    CHECK(none.result()["length"] == 3);

    w.put("m", {"1"}, opts(std::nullopt, true));
    CHECK(refusal([&] { (void)w.put("m", {"2"}, opts(std::nullopt, false)); }).code() ==
          ErrorCode::invalid_state);
    CHECK(refusal([&] { (void)w.put("m", {"2"}, opts(3)); }).code() == ErrorCode::invalid_state);
    CHECK(w.length("m") == 1);
}

TEST_CASE("queue table: a put whose commit fails is io_error, puts nothing and gives its bytes back",
          "[unit][queue]") {
    QueueWorld w;
    auto g = w.get("q", 3);  // waits for more than the put brings: the put goes through the journal
    auto p = w.put("q", {"1", "2"});
    CHECK(w.budget.used() == 2);
    w.journal.fail();
    CHECK(p.error_code() == ErrorCode::io_error);
    CHECK_THAT(p.error_message(), Catch::Matchers::Contains("nothing was put into queue q"));
    CHECK(w.length("q") == 0);
    CHECK(w.budget.used() == 0);
    CHECK(w.journal.queue_items("q").empty());
    CHECK_FALSE(g.answered());
    CHECK(w.journal.pending() == 0);

    auto p2 = w.put("q", {"3", "4", "5"});  // all the waiting get asks for: handed to it
    CHECK(QueueWorld::values(g) == json{3, 4, 5});
    CHECK(p2.result()["length"] == 0);
    CHECK(w.journal.pending() == 0);

    SECTION("the room a failed put held goes to the put waiting for it") {
        auto a = w.put("b", {"1"}, opts(1));
        auto waiting = w.put("b", {"2"});
        CHECK(w.info("b")["putters"] == 1);
        w.journal.fail();
        CHECK(a.error_code() == ErrorCode::io_error);
        CHECK(w.info("b")["putters"] == 0);
        w.journal.commit();
        CHECK(waiting.result() == json{{"name", "b"}, {"put", 1}, {"length", 1}});
        CHECK(w.budget.used() == 1);
    }
}

TEST_CASE("queue table: a get whose commit fails is io_error, and its values are back at the head in order",
          "[unit][queue]") {
    QueueWorld w;
    w.put("q", {"1", "2", "3"});
    w.journal.commit();
    auto g = w.get("q", 2);
    CHECK(w.length("q") == 1);
    w.journal.fail();
    CHECK(g.error_code() == ErrorCode::io_error);
    CHECK_THAT(g.error_message(), Catch::Matchers::Contains("its values are still in queue q"));
    CHECK(w.length("q") == 3);
    CHECK(w.budget.used() == 3);
    CHECK(w.journal.queue_items("q").size() == 3);

    auto all = w.get("q", 3);
    w.journal.commit();
    CHECK(QueueWorld::values(all) == json{1, 2, 3});
    CHECK(w.last_seqs(Kind::delete_items) == std::vector<int64_t>{1, 2, 3});
}

// A group commit that fails fails every write in it, in order: here two gets' (each took values at once).
TEST_CASE("queue table: when the commits of two gets fail, all their values are back at the head in order",
          "[unit][queue]") {
    QueueWorld w;
    w.put("q", {"1", "2", "3"});
    w.journal.commit();
    auto first = w.get("q", 2);
    auto second = w.get("q", 1);
    w.journal.fail();
    w.journal.fail();
    CHECK(first.error_code() == ErrorCode::io_error);
    CHECK(second.error_code() == ErrorCode::io_error);
    REQUIRE(w.length("q") == 3);

    auto all = w.get("q", 3);
    w.journal.commit();
    CHECK(QueueWorld::values(all) == json{1, 2, 3});
    CHECK(w.last_seqs(Kind::delete_items) == std::vector<int64_t>{1, 2, 3});
}

TEST_CASE(
    "queue table: values taken for a client that left before the commit go back to the head, "
    "journaled again with their seqs",
    "[unit][queue]") {
    QueueWorld w;
    w.put("q", {"1", "2", "3"});
    w.journal.commit();
    auto g = w.get("q", 2);
    CHECK(w.journal.kinds().back() == Kind::delete_items);
    g.leave();
    w.journal.commit();  // the values leave the journal: nobody to give them to
    CHECK_FALSE(g.responder()->answered());
    CHECK(g.lines().empty());
    CHECK(w.length("q") == 3);
    REQUIRE(w.journal.kinds().back() == Kind::insert_items);
    const auto& again = *w.journal.log.back();
    CHECK(again.name == "q");
    CHECK(again.items == std::vector<std::pair<int64_t, std::string>>{{1, "1"}, {2, "2"}});
    w.journal.commit();
    CHECK(w.journal.queue_items("q") ==
          std::vector<std::pair<int64_t, std::string>>{{1, "1"}, {2, "2"}, {3, "3"}});

    auto all = w.get("q", 3);
    w.journal.commit();
    CHECK(QueueWorld::values(all) == json{1, 2, 3});
    CHECK(w.budget.used() == 0);

    SECTION("a responder without a session is a client that has gone, too") {
        w.put("q", {R"("x")"});
        w.journal.commit();
        QueueTable::Get r;
        r.name = "q";
        w.table.get(r, Wire::gone());
        w.journal.commit();
        CHECK(w.length("q") == 1);
        CHECK(w.journal.kinds().back() == Kind::insert_items);
        CHECK(w.last_seqs(Kind::insert_items) == std::vector<int64_t>{4});
    }
}

TEST_CASE("queue table: a get that waits and whose client leaves takes nothing", "[unit][queue]") {
    QueueWorld w;
    auto g = w.get("q");
    CHECK(w.info("q")["getters"] == 1);
    g.leave();
    // Only waited on, and no longer: forgotten.
    CHECK(refusal([&] { (void)w.info("q"); }).code() == ErrorCode::unknown_id);
    auto p = w.put("q", {"1"});
    w.journal.commit();
    CHECK(p.result()["length"] == 1);
    CHECK(w.length("q") == 1);
    CHECK(w.journal.count(Kind::delete_items) == 0);
}

TEST_CASE("queue table: a get whose timeout runs out is a timeout error, and takes nothing",
          "[unit][queue]") {
    QueueWorld w;
    auto g = w.get("q", 1, false, 500ms);
    CHECK(w.timers.pending() == 1);
    w.timers.advance(499);
    CHECK_FALSE(g.answered());
    w.timers.advance(1);
    CHECK(g.error_code() == ErrorCode::timeout);
    CHECK(g.error_data()["name"] == "q");
    CHECK(g.error_data()["length"] == 0);
    CHECK(refusal([&] { (void)w.info("q"); }).code() == ErrorCode::unknown_id);

    auto p = w.put("q", {"1"});
    w.journal.commit();
    CHECK(p.result()["length"] == 1);
    CHECK(w.length("q") == 1);
    CHECK(w.journal.kinds() == std::vector<Kind>{Kind::insert_items});

    SECTION("a get served before its timeout has no timer left") {
        auto served = w.get("q", 2, false, 500ms);
        w.put("q", {"2"});
        w.journal.commit();
        CHECK(w.timers.pending() == 0);
        w.journal.commit();
        CHECK(QueueWorld::values(served) == json{1, 2});
    }
    SECTION("a put whose timeout runs out is a timeout error, puts nothing and gives its bytes back") {
        w.put("b", {"1"}, opts(1));
        w.journal.commit();
        auto late = w.put("b", {"22"}, timing_out(1000ms));
        CHECK(w.budget.used() == 4);
        w.timers.advance(1000);
        CHECK(late.error_code() == ErrorCode::timeout);
        CHECK(w.info("b")["putters"] == 0);
        CHECK(w.budget.used() == 2);
        CHECK(w.journal.count(Kind::insert_items) == 2);
    }
}

TEST_CASE(
    "queue table: a delete answers its waiters unknown_id, and a put committed after it answers length 0",
    "[unit][queue]") {
    QueueWorld w;
    w.put("q", {"1"}, opts(2));
    w.journal.commit();
    auto in_flight = w.put("q", {"2"});    // being committed
    auto waiting_put = w.put("q", {"3"});  // no room left
    auto waiting_get = w.get("q", 3);      // 1 value of 3
    CHECK(w.info("q")["putters"] == 1);
    CHECK(w.info("q")["getters"] == 1);

    auto del = w.wire.caller();
    w.table.remove("q", del.responder());
    CHECK(waiting_get.error_code() == ErrorCode::unknown_id);
    CHECK(waiting_get.error_data()["name"] == "q");
    CHECK(waiting_put.error_code() == ErrorCode::unknown_id);
    CHECK_THAT(waiting_put.error_message(), Catch::Matchers::Contains("nothing was put"));
    CHECK(refusal([&] { (void)w.info("q"); }).code() == ErrorCode::unknown_id);
    CHECK_FALSE(del.answered());

    w.journal.commit();  // the put asked for before the delete
    CHECK(in_flight.result() == json{{"name", "q"}, {"put", 1}, {"length", 0}});
    CHECK(w.journal.kinds().back() == Kind::delete_queue);
    w.journal.commit();
    CHECK(del.result() == json{{"name", "q"}, {"deleted", 1}});
    CHECK(w.journal.queues.count("q") == 0);
    CHECK(w.budget.used() == 0);
    CHECK(refusal([&] { w.table.remove("q", Wire::gone()); }).code() == ErrorCode::unknown_id);

    // The name is free again: a new queue, its own maxsize.
    auto fresh = w.put("q", {"9"}, opts(7));
    w.journal.commit();
    CHECK(fresh.result()["length"] == 1);
    CHECK(w.info("q")["maxsize"] == 7);
}

TEST_CASE("queue table: memory queues answer at once and never write to the journal", "[unit][queue]") {
    QueueWorld w;
    auto g = w.get("m");
    auto p = w.put("m", {"1", "2"}, opts(2, true));
    CHECK(p.result() == json{{"name", "m"}, {"put", 2}, {"length", 2}});
    CHECK(g.result() == json{{"name", "m"}, {"values", {1}}, {"length", 1}});
    CHECK(w.info("m")["durable"] == false);

    auto a = w.put("m", {"3"});
    auto waits = w.put("m", {"4"});  // full: waits for room
    CHECK(a.result()["length"] == 2);
    CHECK_FALSE(waits.answered());
    auto two = w.get("m", 2);
    CHECK(QueueWorld::values(two) == json{2, 3});
    CHECK(waits.result()["length"] == 1);

    auto del = w.wire.caller();
    w.table.remove("m", del.responder());
    CHECK(del.result() == json{{"name", "m"}, {"deleted", 1}});
    CHECK(w.journal.log.empty());
    CHECK(w.budget.used() == 0);
}

TEST_CASE(
    "queue table: restore gives the journal's queues back in order, and new values follow the largest seq",
    "[unit][queue]") {
    QueueWorld w;
    QueueRow row;
    row.name = "r";
    row.maxsize = 10;
    row.created_at_ms = 1700000000000;
    row.items = {{5, R"("a")"}, {7, R"("b")"}, {9, R"({"c":3})"}};
    w.table.restore({row});
    json info = w.info("r");
    CHECK(info["length"] == 3);
    CHECK(info["bytes"] == 3 + 3 + 7);
    CHECK(info["maxsize"] == 10);
    CHECK(info["durable"] == true);
    CHECK(info["created_at"].is_string());
    CHECK(w.budget.used() == 13);
    // Its maxsize stands: naming another is invalid_state.
    CHECK(refusal([&] { (void)w.put("r", {"1"}, opts(11)); }).code() == ErrorCode::invalid_state);

    auto p = w.put("r", {R"("d")"});
    REQUIRE(w.journal.log.size() == 1);
    CHECK(w.last_seqs(Kind::insert_items) == std::vector<int64_t>{10});
    w.journal.commit();
    CHECK(p.result()["length"] == 4);
    auto all = w.get("r", 4);
    w.journal.commit();
    CHECK_THAT(all.answer_line(), Catch::Matchers::Contains(R"("values":["a","b",{"c":3},"d"])"));
    CHECK(w.last_seqs(Kind::delete_items) == std::vector<int64_t>{5, 7, 9, 10});
    CHECK(w.budget.used() == 0);
}

TEST_CASE("queue table: a put past the value budget is busy and counts nothing", "[unit][queue]") {
    QueueWorld w(10);
    auto a = w.put("q", {"12345"});
    w.journal.commit();
    CHECK(a.result()["length"] == 1);
    CHECK(w.budget.used() == 5);
    auto e = refusal([&] { (void)w.put("q", {"123456"}); });
    CHECK(e.code() == ErrorCode::busy);
    CHECK(e.data()["limit"] == 10);
    CHECK(w.budget.used() == 5);
    CHECK(w.length("q") == 1);
    CHECK(w.journal.log.size() == 1);
    // Nor is a queue made by a refused first put.
    CHECK(refusal([&] { (void)w.put("other", {"123456"}); }).code() == ErrorCode::busy);
    CHECK(refusal([&] { (void)w.info("other"); }).code() == ErrorCode::unknown_id);

    // A get's commit gives the bytes back.
    auto g = w.get("q");
    w.journal.commit();
    CHECK(QueueWorld::values(g) == json{12345});
    CHECK(w.budget.used() == 0);
    auto b = w.put("q", {"1234567890"});
    w.journal.commit();
    CHECK(b.result()["length"] == 1);
}
