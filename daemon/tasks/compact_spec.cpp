#include <mpctl/daemon/tasks/compact_spec.hpp>

namespace mpctl::daemon {

namespace {

const proto::TaskSpec& defaults() {
    static const proto::TaskSpec spec;
    return spec;
}

const std::string& empty_string() {
    static const std::string empty;
    return empty;
}

const std::string& default_pool() {
    static const std::string pool = proto::k_default_pool;
    return pool;
}

// Whether SPEC sets any of the fields kept out of line.
bool has_rest(const proto::TaskSpec& s) {
    const proto::TaskSpec& d = defaults();
    return !s.pipeline.empty() || s.name || !s.labels.empty() || s.stdin_path || s.stdin_passed || s.input ||
           s.timeout_s || s.kill_after_s != d.kill_after_s || s.retry_delay_s != d.retry_delay_s ||
           !s.after.empty() || s.nice || s.umask || !s.rlimits.empty() || s.max_output || s.cgroup ||
           s.cpus || s.mem || s.gpus || s.array_throttle;
}

SharedStrings::Ref share(SharedStrings* strings, const std::string& text) {
    return strings != nullptr ? strings->get(text) : std::make_shared<const std::string>(text);
}

}  // namespace

CompactSpec::CompactSpec(proto::TaskSpec spec, SharedStrings* strings)
    : env_(std::move(spec.env)), priority_(spec.priority), retries_(spec.retries) {
    if (spec.shell) {
        kind_ = Kind::shell;
        command_ = std::move(*spec.shell);
    } else if (!spec.pipeline.empty()) {
        kind_ = Kind::pipeline;
    } else {
        for (const auto& word : spec.argv) {
            command_ += word;
            command_.push_back('\0');
        }
    }
    command_.shrink_to_fit();
    if (!spec.cwd.empty()) {
        cwd_ = share(strings, spec.cwd);
    }
    if (spec.pool != proto::k_default_pool) {
        pool_ = share(strings, spec.pool);
    }
    if (has_rest(spec)) {
        spec.argv.clear();
        spec.shell.reset();
        spec.cwd.clear();
        spec.pool.clear();
        rest_ = std::make_unique<const proto::TaskSpec>(std::move(spec));
    }
}

CompactSpec::CompactSpec(const CompactSpec& other)
    : command_(other.command_),
      cwd_(other.cwd_),
      pool_(other.pool_),
      env_(other.env_),
      rest_(other.rest_ ? std::make_unique<const proto::TaskSpec>(*other.rest_) : nullptr),
      priority_(other.priority_),
      retries_(other.retries_),
      kind_(other.kind_) {}

CompactSpec& CompactSpec::operator=(const CompactSpec& other) {
    if (this != &other) {
        CompactSpec copy(other);
        *this = std::move(copy);
    }
    return *this;
}

proto::TaskSpec CompactSpec::expanded() const {
    proto::TaskSpec spec = rest_ ? *rest_ : proto::TaskSpec{};
    spec.argv = argv();
    if (kind_ == Kind::shell) {
        spec.shell = command_;
    }
    spec.cwd = cwd();
    spec.env = env_;
    spec.pool = pool();
    spec.priority = priority_;
    spec.retries = retries_;
    return spec;
}

void CompactSpec::share_strings(SharedStrings& strings) {
    if (cwd_) {
        cwd_ = strings.get(*cwd_);
    }
    if (pool_) {
        pool_ = strings.get(*pool_);
    }
}

std::vector<std::string> CompactSpec::argv() const {
    std::vector<std::string> words;
    if (kind_ != Kind::argv) {
        return words;
    }
    size_t start = 0;
    while (start < command_.size()) {
        size_t end = command_.find('\0', start);
        words.emplace_back(command_, start, end - start);
        start = end + 1;
    }
    return words;
}

const std::string* CompactSpec::shell() const {
    return kind_ == Kind::shell ? &command_ : nullptr;
}

const std::vector<std::vector<std::string>>& CompactSpec::pipeline() const {
    return rest().pipeline;
}

std::vector<std::vector<std::string>> CompactSpec::stage_argvs() const {
    switch (kind_) {
        case Kind::shell:
            return {{"/bin/sh", "-c", command_}};
        case Kind::pipeline:
            return rest().pipeline;
        case Kind::argv:
            break;
    }
    return {argv()};
}

const std::string& CompactSpec::cwd() const {
    return cwd_ ? *cwd_ : empty_string();
}

const std::string& CompactSpec::pool() const {
    return pool_ ? *pool_ : default_pool();
}

const proto::TaskSpec& CompactSpec::rest() const {
    return rest_ ? *rest_ : defaults();
}

}  // namespace mpctl::daemon
