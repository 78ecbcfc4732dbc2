#pragma once
// LogPositions: how far a client has read each stream of a task's output (task.output chunks carry their
// offset when task.logs was asked with "from"), so that a stream taken up again after a lost connection
// goes on where it was (task.logs "from", PROTOCOL.md) and every byte is printed once.

#include <cstdint>
#include <map>
#include <string>
#include <tuple>

#include <nlohmann/json.hpp>

namespace mpctl::cli {

class LogPositions {
  public:
    // Notes a task.output chunk (its params) whose data is SIZE bytes.
    void saw(const nlohmann::json& params, size_t size) {
        auto offset = params.find("offset");
        if (offset == params.end() || !offset->is_number_unsigned()) {
            return;
        }
        auto stage = params.find("stage");
        Key key{params.value("attempt", 1), params.value("stream", std::string()),
                stage != params.end() && stage->is_number_integer() ? stage->get<int64_t>() : -1};
        next_[key] = offset->get<uint64_t>() + size;
    }

    // task.logs' "from": every stream read from, and where it goes on.
    [[nodiscard]] nlohmann::json from() const {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& [key, next] : next_) {
            const auto& [attempt, stream, stage] = key;
            nlohmann::json r = {{"attempt", attempt}, {"stream", stream}, {"offset", next}};
            if (stage >= 0) {
                r["stage"] = stage;
            }
            out.push_back(std::move(r));
        }
        return out;
    }

  private:
    using Key = std::tuple<int, std::string, int64_t>;  // attempt, stream, stage (-1: none)
    std::map<Key, uint64_t> next_;
};

}  // namespace mpctl::cli
