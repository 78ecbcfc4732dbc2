#pragma once
// SegmentRegistry: the POSIX shared-memory segments the daemon made for its clients (`mpctl shm`, shm.* in
// PROTOCOL.md), what SharedMemoryManager gives one Python program, for every process: who owns each
// segment, until when (a lease: leases/lease_registry.hpp), and unlinking it when the lease ends or the
// daemon stops (unless made with persist).
//
// Segments can vanish under the registry: Python's resource tracker unlinks every segment a process
// attached to when that process exits (CPython 3.8-3.12, SIGKILL included), and anyone may `rm` a file of
// /dev/shm. The registry keeps a descriptor of each segment and checks, whenever it reports one, that the
// file still has a link and that the name still names it: a vanished segment is dropped, never reported
// as live, its name free to be created again; a lease that ends never unlinks a name that now names
// another file.
//
// The registry is journaled (store/segment_rows.hpp): a create is answered once its row is committed, and a
// daemon that restarts, after a crash too, takes its segments back (restore): persistent ones as they were,
// leased ones while their owner lives (the same pid with the same start time) or their time has not run
// out; the others, and those of connections (which no restart keeps), are unlinked then. Loop thread only.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>

#include <nlohmann/json.hpp>

#include <mpctl/common/shareable_list.hpp>
#include <mpctl/common/unique_fd.hpp>
#include <mpctl/daemon/leases/lease_registry.hpp>
#include <mpctl/daemon/shm/mapping_cache.hpp>
#include <mpctl/daemon/store/store.hpp>

namespace mpctl::daemon {

class Responder;
class Session;

class SegmentRegistry {
  public:
    // MAX_SIZE: the largest segment a client may create.
    SegmentRegistry(LeaseRegistry& leases, Store& store, Timers& timers, uint64_t max_size)
        : leases_(leases), store_(store), max_size_(max_size), mappings_(timers) {}
    ~SegmentRegistry();
    SegmentRegistry(const SegmentRegistry&) = delete;
    SegmentRegistry& operator=(const SegmentRegistry&) = delete;

    struct Create {
        std::string name;  // normalized
        uint64_t size = 0;
        mode_t mode = 0600;
        std::optional<LeaseSpec> lease;  // nullopt: persist
        std::shared_ptr<Session> session;
        std::string content;          // written before the segment appears (a ShareableList's image)
        std::optional<size_t> items;  // a ShareableList's, said in the answer
    };
    // Makes the segment and answers RESPONDER with its description once its row is committed; throws
    // RequestError (exists: invalid_state; no such owner: unknown_id; the file system: io_error).
    void create(const Create& request, const std::shared_ptr<Responder>& responder);
    // Start-up: takes back the segments of the journal (see above).
    void restore(const std::vector<SegmentRow>& rows);
    // Unlinks NAME (registered or not); throws unknown_id if there is no such segment.
    nlohmann::json unlink(const std::string& name);
    // The live registered segments (ALL: every segment of /dev/shm, registered or not).
    [[nodiscard]] nlohmann::json list(bool all);
    // One segment (registered or not) in detail: size, mode, uid, and the pids that map it (/proc).
    [[nodiscard]] nlohmann::json info(const std::string& name);
    // Bytes of NAME (registered or not): LENGTH from OFFSET (nullopt: to the end), base64.
    [[nodiscard]] nlohmann::json read(const std::string& name, uint64_t offset,
                                      std::optional<uint64_t> length);
    // Writes DATA at OFFSET of NAME; throws invalid_params if it would pass the segment's end.
    nlohmann::json write(const std::string& name, uint64_t offset, const std::string& data);

    // A ShareableList's items (INDEX: that one only), of NAME registered or not; throws invalid_state if
    // NAME holds no list.
    [[nodiscard]] nlohmann::json list_get(const std::string& name, std::optional<int64_t> index);
    // Sets item INDEX of the list in NAME; throws invalid_params if it does not fit (nothing changes).
    nlohmann::json list_set(const std::string& name, int64_t index, const common::shm::ListValue& value);

    // The daemon stops: every segment not made with persist is unlinked, as SharedMemoryManager does.
    void unlink_leased();

    [[nodiscard]] uint64_t max_size() const { return max_size_; }
    // Bytes a read or write request may carry (base64 in a line of at most 1 MiB).
    static constexpr uint64_t k_max_transfer = 512 * 1024;

  private:
    struct Segment {
        uint64_t size = 0;
        mode_t mode = 0;
        int64_t created_at_ms = 0;
        std::optional<LeaseRegistry::LeaseId> lease;
        bool journaled = false;  // its row is (being) written
        pid_t pid = 0;
        common::UniqueFd fd;  // read-only: to tell whether the file is still the one made
        dev_t dev = 0;
        ino_t ino = 0;
    };
    // Whether SEGMENT's file is still linked under NAME.
    static bool alive(const std::string& name, const Segment& segment);
    // Forgets NAME if its file vanished; the live segment, or null.
    Segment* live(const std::string& name);
    // Unlinks NAME if it still names SEGMENT's file, and forgets it (its row too).
    void drop(const std::string& name, bool unlink_file);
    // Opens the lease SPEC for segment NAME: its end drops the segment.
    common::Result<LeaseRegistry::LeaseId> lease_for(const std::string& name, const LeaseSpec& spec,
                                                     const std::shared_ptr<Session>& session);
    [[nodiscard]] nlohmann::json describe(const std::string& name, const Segment& s) const;
    // NAME mapped for a list request; throws RequestError as opening it does.
    MappingCache::View mapped(const std::string& name, bool writable);

    LeaseRegistry& leases_;
    Store& store_;
    uint64_t max_size_;
    std::map<std::string, Segment> segments_;
    MappingCache mappings_;
};

}  // namespace mpctl::daemon
