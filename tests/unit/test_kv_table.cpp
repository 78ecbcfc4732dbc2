// KvTable (daemon/manager/kv_table.hpp) without a daemon: a FakeJournal that holds every commit until the
// test ends it (ok or failed) and answers a dict's read back from what committed, FakeTimers, and callers
// that are real Sessions over socketpairs, so that answers and kv.changed notifications can be read.

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <mpctl/daemon/manager/kv_table.hpp>
#include <mpctl/daemon/manager/value_budget.hpp>
#include <mpctl/proto/errors.hpp>

#include "fake_journal.hpp"
#include "responder_harness.hpp"
#include "scheduler_harness.hpp"

namespace kv_table_tests {

using mpctl::daemon::DictRow;
using mpctl::daemon::KvTable;
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

struct KvWorld {
    Wire wire;  // first: it outlives the table, whose responders' sessions it holds
    FakeJournal journal;
    FakeTimers timers;
    ValueBudget budget;
    KvTable table{journal, timers, budget};

    explicit KvWorld(uint64_t max_bytes = uint64_t{1} << 30) : budget(max_bytes) {}

    Caller change(KvTable::Change c) {
        Caller caller = wire.caller();
        table.change(std::move(c), caller.responder());
        return caller;
    }
    Caller set(const std::string& name, const std::string& key, const std::string& value) {
        return change({name, key, value, false, std::nullopt});
    }
    Caller del(const std::string& name, const std::string& key) {
        return change({name, key, std::nullopt, false, std::nullopt});
    }
    // kv.cas: EXPECT nullopt is absent: true, VALUE nullopt is delete: true.
    Caller cas(const std::string& name, const std::string& key, std::optional<std::string> expect,
               std::optional<std::string> value) {
        return change({name, key, std::move(value), true, std::move(expect)});
    }
    Caller watch(const std::string& name, std::optional<std::string> key = std::nullopt, bool current = false,
                 std::optional<std::chrono::milliseconds> timeout = std::nullopt) {
        Caller caller = wire.caller();
        table.watch(name, std::move(key), current, timeout, caller.responder());
        return caller;
    }
    json get(const std::string& name, const std::string& key) const {
        return json::parse(table.get(name, key));
    }
    json list(const std::string& name) const { return json::parse(table.list(name)); }
    // kv.get and kv.list as their handlers ask them: answered once the dict is settled.
    Caller settled_get(const std::string& name, const std::string& key) {
        Caller caller = wire.caller();
        auto responder = caller.responder();
        table.when_settled(name, responder,
                           [this, name, key, responder] { responder->result_text(table.get(name, key)); });
        return caller;
    }
    Caller settled_list(const std::string& name) {
        Caller caller = wire.caller();
        auto responder = caller.responder();
        table.when_settled(name, responder,
                           [this, name, responder] { responder->result_text(table.list(name)); });
        return caller;
    }
};

// The params of each kv.changed notification CALLER received.
std::vector<json> changes(const Caller& caller) {
    std::vector<json> out;
    for (const auto& n : caller.notifications()) {
        CHECK(n["method"] == "kv.changed");
        out.push_back(n["params"]);
    }
    return out;
}

std::vector<int64_t> versions(const std::vector<json>& changed) {
    std::vector<int64_t> out;
    for (const auto& c : changed) {
        out.push_back(c["version"].get<int64_t>());
    }
    return out;
}

json changed(const std::string& name, const std::string& key, const json& value, int64_t version) {
    return {{"name", name}, {"key", key}, {"value", value}, {"version", version}};
}
json deleted(const std::string& name, const std::string& key, int64_t version) {
    return {{"name", name}, {"key", key}, {"deleted", true}, {"version", version}};
}

}  // namespace kv_table_tests

using namespace kv_table_tests;

TEST_CASE("kv table: every change takes its dict's next version, and a delete's is never given again",
          "[unit][kv]") {
    KvWorld w;
    auto s1 = w.set("d", "a", "1");
    CHECK_FALSE(s1.answered());  // after the commit
    w.journal.commit();
    CHECK(s1.result() == json{{"name", "d"}, {"key", "a"}, {"version", 1}});
    auto s2 = w.set("d", "b", R"("two")");
    auto d3 = w.del("d", "a");
    auto s4 = w.set("d", "a", "3");
    w.journal.commit_all();
    CHECK(s2.result()["version"] == 2);
    CHECK(d3.result() == json{{"name", "d"}, {"key", "a"}, {"version", 3}});
    CHECK(s4.result()["version"] == 4);
    CHECK(w.get("d", "a") == json{{"name", "d"}, {"key", "a"}, {"value", 3}, {"version", 4}});
    CHECK(w.list("d") == json{{"name", "d"},
                              {"version", 4},
                              {"entries",
                               {{{"key", "a"}, {"value", 3}, {"version", 4}},
                                {{"key", "b"}, {"value", "two"}, {"version", 2}}}}});

    // Versions are per dict.
    auto other = w.set("e", "a", "1");
    w.journal.commit();
    CHECK(other.result()["version"] == 1);

    // The last change a delete: the dict's version is still past it.
    auto d5 = w.del("d", "b");
    w.journal.commit();
    CHECK(d5.result()["version"] == 5);
    CHECK(w.list("d")["version"] == 5);
    CHECK(w.journal.dicts["d"].version == 5);
    auto s6 = w.set("d", "b", "6");
    w.journal.commit();
    CHECK(s6.result()["version"] == 6);
    CHECK(w.journal.kinds() == std::vector<Kind>{Kind::kv_set, Kind::kv_set, Kind::kv_delete, Kind::kv_set,
                                                 Kind::kv_set, Kind::kv_delete, Kind::kv_set});
}

TEST_CASE("kv table: restore gives the journal's dicts back, and versions go on after the dict's",
          "[unit][kv]") {
    KvWorld w;
    DictRow row;
    row.name = "r";
    row.version = 9;  // its last change a delete
    row.entries = {{"a", "1", 2}, {"b", R"("x")", 5}};
    w.table.restore({row});
    CHECK(w.get("r", "a")["version"] == 2);
    CHECK(w.list("r")["version"] == 9);
    CHECK(w.budget.used() == 1 + 1 + 1 + 3);
    auto s = w.set("r", "c", "true");
    w.journal.commit();
    CHECK(s.result()["version"] == 10);
}

TEST_CASE("kv table: cas compares as JSON values, a mismatch is busy with what the key holds", "[unit][kv]") {
    KvWorld w;
    w.set("d", "n", "1");
    w.set("d", "o", R"({"a":1,"b":[1,2]})");
    w.journal.commit_all();

    auto number = w.cas("d", "n", "1.0", "2");  // 1 equals 1.0
    w.journal.commit();
    CHECK(number.result()["version"] == 3);
    auto object = w.cas("d", "o", R"({"b":[1,2.0],"a":1})", "null");  // members in any order
    w.journal.commit();
    CHECK(object.result()["version"] == 4);
    CHECK(w.get("d", "o")["value"].is_null());
    size_t writes = w.journal.log.size();

    auto mismatch = refusal([&] { (void)w.cas("d", "n", "3", "4"); });
    CHECK(mismatch.code() == ErrorCode::busy);
    CHECK(mismatch.data() == json{{"name", "d"}, {"key", "n"}, {"value", 2}, {"version", 3}});
    // A string is not the number it spells.
    CHECK(refusal([&] { (void)w.cas("d", "n", R"("2")", "4"); }).code() == ErrorCode::busy);
    // null is a value: it is not "absent".
    auto null_is_there = refusal([&] { (void)w.cas("d", "o", std::nullopt, "5"); });
    CHECK(null_is_there.code() == ErrorCode::busy);
    CHECK(null_is_there.data() == json{{"name", "d"}, {"key", "o"}, {"value", nullptr}, {"version", 4}});
    auto not_absent = refusal([&] { (void)w.cas("d", "n", std::nullopt, "5"); });
    CHECK(not_absent.code() == ErrorCode::busy);
    CHECK(not_absent.data()["value"] == 2);
    CHECK(not_absent.data()["version"] == 3);
    auto missing = refusal([&] { (void)w.cas("d", "missing", "1", "5"); });
    CHECK(missing.code() == ErrorCode::busy);
    CHECK(missing.data() == json{{"name", "d"}, {"key", "missing"}, {"absent", true}});
    CHECK(w.journal.log.size() == writes);  // nothing of them was written
    CHECK(w.list("d")["version"] == 4);

    auto absent = w.cas("d", "fresh", std::nullopt, R"("new")");
    w.journal.commit();
    CHECK(absent.result() == json{{"name", "d"}, {"key", "fresh"}, {"version", 5}});
    auto gone = w.cas("d", "fresh", R"("new")", std::nullopt);  // delete: true
    w.journal.commit();
    CHECK(gone.result()["version"] == 6);
    CHECK(w.journal.kinds().back() == Kind::kv_delete);
    CHECK(refusal([&] { (void)w.get("d", "fresh"); }).code() == ErrorCode::unknown_id);
}

TEST_CASE("kv table: of two cas in the same turn, before any commit, only the first wins", "[unit][kv]") {
    KvWorld w;
    w.set("d", "k", "0");
    w.journal.commit();

    auto first = w.cas("d", "k", "0", "1");
    auto second = refusal([&] { (void)w.cas("d", "k", "0", "2"); });
    CHECK(second.code() == ErrorCode::busy);
    CHECK(second.data()["value"] == 1);
    CHECK(second.data()["version"] == 2);
    auto make = w.cas("d", "new", std::nullopt, R"("mine")");
    auto make_again = refusal([&] { (void)w.cas("d", "new", std::nullopt, R"("theirs")"); });
    CHECK(make_again.code() == ErrorCode::busy);
    CHECK(make_again.data()["value"] == "mine");
    CHECK_FALSE(first.answered());

    w.journal.commit_all();
    CHECK(first.result()["version"] == 2);
    CHECK(make.result()["version"] == 3);
    CHECK(w.journal.dicts["d"].entries["k"].value == "1");
    CHECK(w.journal.dicts["d"].entries["new"].value == R"("mine")");
    CHECK(w.journal.log.size() == 3);
}

TEST_CASE("kv table: watchers hear committed changes after their commit, in version order, by key",
          "[unit][kv]") {
    KvWorld w;
    w.set("d", "a", "1");
    w.journal.commit();  // version 1: before the watches
    auto all = w.watch("d");
    auto only_b = w.watch("d", "b");

    auto s2 = w.set("d", "a", "2");
    CHECK(changes(all).empty());  // not before its commit
    w.journal.commit();
    CHECK(changes(all) == std::vector<json>{changed("d", "a", 2, 2)});
    CHECK(s2.result()["version"] == 2);

    w.set("d", "b", R"({"x":[1]})");
    w.del("d", "a");
    w.set("d", "b", "4");
    CHECK(changes(all).size() == 1);
    CHECK(changes(only_b).empty());
    w.journal.commit_all();
    CHECK(changes(all) == std::vector<json>{changed("d", "a", 2, 2), changed("d", "b", json{{"x", {1}}}, 3),
                                            deleted("d", "a", 4), changed("d", "b", 4, 5)});
    CHECK(versions(changes(only_b)) == std::vector<int64_t>{3, 5});
    // The notification line is a JSON-RPC notification, the value as its text.
    CHECK_THAT(all.joined(), Catch::Matchers::Contains(
                                 R"({"jsonrpc":"2.0","method":"kv.changed","params":{"name":"d","key":"b",)"
                                 R"("value":{"x":[1]},"version":3}})"));

    // A change made before a watch started (committed after) is not streamed to it.
    auto s6 = w.set("d", "c", "6");
    auto late = w.watch("d");
    w.journal.commit();
    CHECK(changes(late).empty());
    CHECK(versions(changes(all)).back() == 6);
    w.set("d", "c", "7");
    w.journal.commit();
    CHECK(changes(late) == std::vector<json>{changed("d", "c", 7, 7)});
    CHECK(versions(changes(all)) == std::vector<int64_t>{2, 3, 4, 5, 6, 7});
    CHECK_FALSE(all.answered());  // a watch without a timeout lasts

    // Another dict's changes are not this one's.
    w.set("e", "a", "1");
    w.journal.commit();
    CHECK(changes(all).size() == 6);
}

TEST_CASE("kv table: a watch with current sends the entries there are first", "[unit][kv]") {
    KvWorld w;
    w.set("d", "a", "1");
    w.set("d", "b", R"({"x":[1]})");
    w.journal.commit_all();

    auto all = w.watch("d", std::nullopt, true);
    CHECK(changes(all) == std::vector<json>{changed("d", "a", 1, 1), changed("d", "b", json{{"x", {1}}}, 2)});
    auto b = w.watch("d", "b", true);
    CHECK(changes(b) == std::vector<json>{changed("d", "b", json{{"x", {1}}}, 2)});
    auto empty = w.watch("none", std::nullopt, true);
    CHECK(changes(empty).empty());

    w.set("d", "c", "3");
    w.journal.commit();
    CHECK(versions(changes(all)) == std::vector<int64_t>{1, 2, 3});
    CHECK(versions(changes(b)) == std::vector<int64_t>{2});
}

TEST_CASE("kv table: a watch whose timeout runs out ends with a timeout error", "[unit][kv]") {
    KvWorld w;
    auto watch = w.watch("d", std::nullopt, false, 1000ms);
    w.set("d", "a", "1");
    w.journal.commit();
    CHECK(versions(changes(watch)) == std::vector<int64_t>{1});
    w.timers.advance(1000);
    CHECK(watch.error_code() == ErrorCode::timeout);
    CHECK(watch.error_data()["name"] == "d");
    CHECK(watch.error_data()["version"] == 1);
    w.set("d", "a", "2");
    w.journal.commit();
    CHECK(changes(watch).size() == 1);  // nothing after its answer

    SECTION("a watch of a dict nobody wrote leaves nothing behind") {
        auto idle = w.watch("idle", std::nullopt, false, 10ms);
        w.timers.advance(10);
        CHECK(idle.error_code() == ErrorCode::timeout);
        auto s = w.set("idle", "a", "1");
        w.journal.commit();
        CHECK(s.result()["version"] == 1);
    }
}

TEST_CASE("kv table: a change whose commit fails is io_error, and writes wait for the dict's read back",
          "[unit][kv]") {
    KvWorld w;
    w.set("d", "k", "1");
    w.set("d", "other", R"("x")");
    w.journal.commit_all();

    auto bad = w.set("d", "k", "2");
    w.journal.fail();
    CHECK(bad.error_code() == ErrorCode::io_error);
    CHECK(bad.error_data()["name"] == "d");
    CHECK(bad.error_data()["key"] == "k");
    CHECK_THAT(bad.error_message(), Catch::Matchers::Contains("nothing changed"));
    REQUIRE(w.journal.kinds().back() == Kind::read_dict);
    REQUIRE(w.journal.pending() == 1);

    // While the dict is read back, writes wait: a cas that the failed write would let through among them.
    auto c = w.cas("d", "k", "2", "3");
    auto s = w.set("d", "late", R"("l")");
    auto d = w.del("d", "other");
    CHECK(w.journal.pending() == 1);
    CHECK_FALSE(c.answered());
    CHECK_FALSE(s.answered());

    w.journal.commit();  // the read: k = 1 at version 1, other at 2; version 3, the failed one's, is skipped
    CHECK(c.error_code() == ErrorCode::busy);
    CHECK(c.error_data()["value"] == 1);
    CHECK(c.error_data()["version"] == 1);
    w.journal.commit_all();
    CHECK(s.result()["version"] == 4);
    CHECK(d.result()["version"] == 5);
    CHECK(w.get("d", "k") == json{{"name", "d"}, {"key", "k"}, {"value", 1}, {"version", 1}});
    CHECK(w.list("d")["version"] == 5);
    CHECK(w.journal.dicts["d"].version == 5);
    CHECK(w.budget.used() == (1 + 1) + (4 + 3));  // k=1, late="l"

    SECTION("a failed delete is read back the same way") {
        auto gone = w.del("d", "k");
        w.journal.fail();
        CHECK(gone.error_code() == ErrorCode::io_error);
        w.journal.commit();
        CHECK(w.get("d", "k")["value"] == 1);
        CHECK(w.budget.used() == (1 + 1) + (4 + 3));
        auto next = w.set("d", "k", "5");
        w.journal.commit();
        CHECK(next.result()["version"] == 7);  // 6 was the failed delete's
    }
}

TEST_CASE("kv table: after a change is answered io_error, nothing of it is seen", "[unit][kv]") {
    KvWorld w;
    w.set("d", "k", "1");
    w.journal.commit();
    auto bad = w.set("d", "k", "2");
    w.journal.fail();
    REQUIRE(bad.error_code() == ErrorCode::io_error);  // "nothing changed"
    // The read back has not committed yet: what asks now waits for it, and then reads what the journal has,
    // never what the client was told failed.
    auto get = w.settled_get("d", "k");
    auto list = w.settled_list("d");
    auto current = w.watch("d", std::nullopt, true);
    CHECK_FALSE(get.answered());
    CHECK_FALSE(list.answered());
    CHECK(changes(current).empty());
    w.journal.commit();  // the read back
    CHECK(get.result()["value"] == 1);
    CHECK(list.result()["entries"][0]["value"] == 1);
    CHECK(changes(current) == std::vector<json>{changed("d", "k", 1, 1)});
}

TEST_CASE("kv table: a watch started while a change is being committed hears every later committed change",
          "[unit][kv]") {
    KvWorld w;
    w.set("d", "a", "1");
    w.journal.commit();
    auto in_flight = w.set("d", "a", "2");  // version 2, being committed
    auto watch = w.watch("d");
    w.journal.fail();  // version 2 never was
    CHECK(in_flight.error_code() == ErrorCode::io_error);
    w.journal.commit();  // the read back: version 1
    auto next = w.set("d", "a", "3");
    w.journal.commit();
    // The failed change's version is skipped, never given again: the watch started after it was taken.
    CHECK(next.result()["version"] == 3);
    CHECK(changes(watch) == std::vector<json>{changed("d", "a", 3, 3)});
}

TEST_CASE("kv table: while a failed read back waits to be retried, writes still wait for it", "[unit][kv]") {
    KvWorld w;
    w.set("d", "k", "1");
    w.journal.commit();
    auto bad = w.set("d", "k", "2");
    w.journal.fail();
    CHECK(bad.error_code() == ErrorCode::io_error);
    REQUIRE(w.journal.kinds().back() == Kind::read_dict);
    w.journal.fail();  // the read back fails too: it is retried a little later
    CHECK(w.timers.pending() == 1);

    // The dict still holds the lost k = 2 in memory: a cas expecting it must not pass.
    auto c = w.cas("d", "k", "2", "3");
    w.timers.advance(1000);
    w.journal.commit_all();
    CHECK(c.answer().contains("error"));
    CHECK(c.answer()["error"]["data"]["value"] == 1);
    CHECK(w.journal.dicts["d"].entries["k"].value == "1");
    CHECK(w.get("d", "k")["value"] == 1);
}

TEST_CASE("kv table: deleting a key that is not there is unknown_id and changes nothing", "[unit][kv]") {
    KvWorld w;
    auto no_dict = refusal([&] { (void)w.del("d", "k"); });
    CHECK(no_dict.code() == ErrorCode::unknown_id);
    CHECK(no_dict.data() == json{{"name", "d"}, {"key", "k"}});
    CHECK(w.list("d") == json{{"name", "d"}, {"version", 0}, {"entries", json::array()}});
    CHECK(refusal([&] { (void)w.get("d", "k"); }).code() == ErrorCode::unknown_id);

    w.set("d", "a", "1");
    w.journal.commit();
    auto no_key = refusal([&] { (void)w.del("d", "k"); });
    CHECK(no_key.code() == ErrorCode::unknown_id);
    CHECK(w.list("d")["version"] == 1);
    CHECK(w.journal.log.size() == 1);
    auto next = w.set("d", "b", "2");
    w.journal.commit();
    CHECK(next.result()["version"] == 2);
}

TEST_CASE("kv table: a set past the value budget is busy and counts nothing", "[unit][kv]") {
    KvWorld w(10);
    auto a = w.set("d", "key", "12345");  // 3 + 5 bytes
    w.journal.commit();
    CHECK(a.result()["version"] == 1);
    CHECK(w.budget.used() == 8);
    auto e = refusal([&] { (void)w.set("d", "k2", "123"); });
    CHECK(e.code() == ErrorCode::busy);
    CHECK(e.data()["limit"] == 10);
    CHECK(w.budget.used() == 8);
    CHECK(w.list("d")["version"] == 1);
    CHECK(w.journal.log.size() == 1);
    // A smaller value for the same key gives bytes back.
    w.set("d", "key", "1");
    w.journal.commit();
    CHECK(w.budget.used() == 4);
    auto fits = w.set("d", "k2", "123");
    w.journal.commit();
    CHECK(fits.result()["version"] == 3);
    CHECK(w.budget.used() == 9);
}
