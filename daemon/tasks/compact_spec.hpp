#pragma once
// CompactSpec: a task's spec as the daemon keeps it for the task's life, in a quarter of the size of the
// proto::TaskSpec it was parsed into. With a long queue the specs are most of the daemon's memory, and most
// of a proto::TaskSpec is fields a typical task leaves at their defaults (a name, labels, limits, a
// timeout...): those live in a block of their own, made only for a task that sets one. The command is one
// string (argv's words each ended by a NUL, which no word may contain, or the shell script), so a short
// command needs no heap block; cwd and pool are shared with every task that has the same (SharedStrings);
// the environment was shared already (tasks/environments.hpp). Read-only but for the environment, which a
// finished task lets go of. Loop thread only.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <mpctl/daemon/tasks/shared_strings.hpp>
#include <mpctl/proto/task_spec.hpp>

namespace mpctl::daemon {

class CompactSpec {
  public:
    CompactSpec() = default;
    // SPEC, with its cwd and pool taken from STRINGS (null: copies of their own, until share_strings).
    CompactSpec(proto::TaskSpec spec, SharedStrings* strings);
    CompactSpec(const CompactSpec& other);
    CompactSpec& operator=(const CompactSpec& other);
    CompactSpec(CompactSpec&&) noexcept = default;
    CompactSpec& operator=(CompactSpec&&) noexcept = default;
    ~CompactSpec() = default;

    // The spec as it was parsed (what the journal stores).
    [[nodiscard]] proto::TaskSpec expanded() const;
    // Takes cwd and pool from STRINGS (a spec read back from the journal).
    void share_strings(SharedStrings& strings);

    // -- the command ----------------------------------------------------------------------------------
    [[nodiscard]] std::vector<std::string> argv() const;  // empty for a shell script or a pipeline
    [[nodiscard]] const std::string* shell() const;       // the script of a shell task, else null
    [[nodiscard]] const std::vector<std::vector<std::string>>& pipeline() const;  // empty unless one
    // The argv of each process, as proto::TaskSpec::stage_argvs.
    [[nodiscard]] std::vector<std::vector<std::string>> stage_argvs() const;

    // -- what every task has --------------------------------------------------------------------------
    [[nodiscard]] const std::string& cwd() const;  // empty: the daemon's default
    [[nodiscard]] const std::shared_ptr<const proto::Environment>& env() const { return env_; }
    void set_env(std::shared_ptr<const proto::Environment> env) { env_ = std::move(env); }
    [[nodiscard]] const std::string& pool() const;
    [[nodiscard]] int priority() const { return priority_; }
    [[nodiscard]] int retries() const { return retries_; }

    // -- the rest, mostly defaults --------------------------------------------------------------------
    [[nodiscard]] const std::optional<std::string>& name() const { return rest().name; }
    [[nodiscard]] const std::map<std::string, std::string>& labels() const { return rest().labels; }
    [[nodiscard]] const std::optional<std::string>& stdin_path() const { return rest().stdin_path; }
    [[nodiscard]] bool stdin_passed() const { return rest().stdin_passed; }
    [[nodiscard]] const std::optional<std::string>& input() const { return rest().input; }
    [[nodiscard]] std::optional<double> timeout_s() const { return rest().timeout_s; }
    [[nodiscard]] double kill_after_s() const { return rest().kill_after_s; }
    [[nodiscard]] double retry_delay_s() const { return rest().retry_delay_s; }
    [[nodiscard]] const std::vector<int64_t>& after() const { return rest().after; }
    [[nodiscard]] std::optional<int> nice() const { return rest().nice; }
    [[nodiscard]] std::optional<unsigned> umask() const { return rest().umask; }
    [[nodiscard]] const std::map<std::string, uint64_t>& rlimits() const { return rest().rlimits; }
    [[nodiscard]] std::optional<uint64_t> max_output() const { return rest().max_output; }
    [[nodiscard]] bool cgroup() const { return rest().cgroup; }
    [[nodiscard]] std::optional<int> cpus() const { return rest().cpus; }
    [[nodiscard]] std::optional<uint64_t> mem() const { return rest().mem; }
    [[nodiscard]] std::optional<int> gpus() const { return rest().gpus; }
    [[nodiscard]] std::optional<int> array_throttle() const { return rest().array_throttle; }

  private:
    enum class Kind : uint8_t { argv, shell, pipeline };

    // The fields kept out of line: a proto::TaskSpec whose command, cwd, env, pool, priority and retries
    // are unused (they are kept above); a static one of defaults when the task sets none of them.
    [[nodiscard]] const proto::TaskSpec& rest() const;

    std::string command_;
    SharedStrings::Ref cwd_;   // null: empty
    SharedStrings::Ref pool_;  // null: the default pool
    std::shared_ptr<const proto::Environment> env_;
    std::unique_ptr<const proto::TaskSpec> rest_;
    int priority_ = 0;
    int retries_ = 0;
    Kind kind_ = Kind::argv;
};

}  // namespace mpctl::daemon
