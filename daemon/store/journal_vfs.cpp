#include <array>
#include <cstdint>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <string>
#include <unistd.h>
#include <utility>

#include <sqlite3.h>

#include <mpctl/daemon/store/journal_vfs.hpp>

namespace mpctl::daemon::sqlite {

namespace {

constexpr const char* k_name = "mpctl-journal";
// The lock bytes in the -shm file: 120 + i for lock i (os_unix.c's UNIX_SHM_BASE); the DMS byte after them
// stays SQLite's own.
constexpr off_t k_lock_base = 120;

// One journal's WAL-index locks in this process, shared by every connection to it.
struct WalIndex {
    std::array<int, SQLITE_SHM_NLOCK> shared{};  // connections holding lock i shared
    std::array<bool, SQLITE_SHM_NLOCK> exclusive{};
    int users = 0;   // connections that mapped the WAL-index
    int guard = -1;  // the -shm file, with the OFD lock that keeps other processes out
};

// Every lock operation is a few bit operations under this one mutex: the two connections meet here at most
// twice a transaction. Both are never destroyed: a connection may still close on another thread while the
// process runs its exit handlers (the fuzzer's daemon, which is never torn down, has a checkpointer).
std::mutex& mutex() {
    static auto* m = new std::mutex;
    return *m;
}
// By the journal's full path, while a connection has its WAL-index mapped.
std::map<std::string, WalIndex>& indexes() {
    static auto* m = new std::map<std::string, WalIndex>;
    return *m;
}

sqlite3_vfs* g_real = nullptr;

// The file SQLite hands the VFS (8-byte aligned, no more): ours first, the unix VFS's right after it, at a
// multiple of 8 since File holds pointers.
struct File {
    sqlite3_file base;
    // The main database's full path, for its WAL-index (SQLite keeps the name it opened with until
    // xClose); null for other files.
    const char* path;
    WalIndex* index;  // once the WAL-index is mapped
    uint8_t shared;   // the locks this connection holds, a bit each
    uint8_t exclusive;
};

File* self(sqlite3_file* f) {
    return reinterpret_cast<File*>(f);
}
sqlite3_file* real(sqlite3_file* f) {
    return reinterpret_cast<sqlite3_file*>(self(f) + 1);
}

int lock_guard_fd(const std::string& shm_path) {
    int fd = ::open(shm_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return -1;
    }
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = k_lock_base;
    lock.l_len = SQLITE_SHM_NLOCK;
    if (::fcntl(fd, F_OFD_SETLK, &lock) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Gives back the locks in MASK that F holds. The caller holds mutex().
void release(File* f, uint8_t mask) {
    WalIndex& w = *f->index;
    for (int i = 0; i < SQLITE_SHM_NLOCK; ++i) {
        const unsigned bit = (1u << i) & mask;
        if ((f->shared & bit) != 0) {
            --w.shared[i];
        }
        if ((f->exclusive & bit) != 0) {
            w.exclusive[i] = false;
        }
    }
    f->shared &= static_cast<uint8_t>(~mask);
    f->exclusive &= static_cast<uint8_t>(~mask);
}

void detach(File* f) {
    if (f->index == nullptr) {
        return;
    }
    std::lock_guard lock(mutex());
    release(f, 0xff);
    WalIndex& w = *std::exchange(f->index, nullptr);
    if (--w.users == 0) {
        // Only now: closing any descriptor of the -shm file drops this process's fcntl locks on it, and
        // SQLite's own (its DMS byte) are gone only once every connection has unmapped.
        ::close(w.guard);
        indexes().erase(f->path);
    }
}

int x_close(sqlite3_file* f) {
    detach(self(f));
    return real(f)->pMethods->xClose(real(f));
}
int x_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 at) {
    return real(f)->pMethods->xRead(real(f), buf, n, at);
}
int x_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 at) {
    return real(f)->pMethods->xWrite(real(f), buf, n, at);
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    return real(f)->pMethods->xTruncate(real(f), size);
}
int x_sync(sqlite3_file* f, int flags) {
    return real(f)->pMethods->xSync(real(f), flags);
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) {
    return real(f)->pMethods->xFileSize(real(f), size);
}
int x_lock(sqlite3_file* f, int level) {
    return real(f)->pMethods->xLock(real(f), level);
}
int x_unlock(sqlite3_file* f, int level) {
    return real(f)->pMethods->xUnlock(real(f), level);
}
int x_check_reserved_lock(sqlite3_file* f, int* out) {
    return real(f)->pMethods->xCheckReservedLock(real(f), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
    return real(f)->pMethods->xFileControl(real(f), op, arg);
}
int x_sector_size(sqlite3_file* f) {
    return real(f)->pMethods->xSectorSize(real(f));
}
int x_device_characteristics(sqlite3_file* f) {
    return real(f)->pMethods->xDeviceCharacteristics(real(f));
}

int x_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
    File* file = self(f);
    if (file->index == nullptr) {
        if (file->path == nullptr) {
            return SQLITE_IOERR_SHMOPEN;  // SQLite maps a WAL-index only for a main database
        }
        std::lock_guard lock(mutex());
        WalIndex& w = indexes()[file->path];
        if (w.users == 0) {
            w.guard = lock_guard_fd(std::string(file->path) + "-shm");
            if (w.guard < 0) {
                indexes().erase(file->path);
                return SQLITE_BUSY;  // another process has the journal open: "database is locked"
            }
        }
        ++w.users;
        file->index = &w;
    }
    return real(f)->pMethods->xShmMap(real(f), region, size, extend, out);
}

int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    File* file = self(f);
    if (file->index == nullptr || offset < 0 || n < 1 || offset + n > SQLITE_SHM_NLOCK) {
        return SQLITE_IOERR_SHMLOCK;
    }
    const auto mask = static_cast<uint8_t>(((1u << (offset + n)) - 1) & ~((1u << offset) - 1));
    std::lock_guard lock(mutex());
    if ((flags & SQLITE_SHM_UNLOCK) != 0) {
        release(file, mask);
        return SQLITE_OK;
    }
    WalIndex& w = *file->index;
    const bool shared = (flags & SQLITE_SHM_SHARED) != 0;
    for (int i = offset; i < offset + n; ++i) {
        const unsigned bit = 1u << i;
        const bool other_exclusive = w.exclusive[i] && (file->exclusive & bit) == 0;
        const int other_shared = w.shared[i] - ((file->shared & bit) != 0 ? 1 : 0);
        if (other_exclusive || (!shared && other_shared > 0)) {
            return SQLITE_BUSY;
        }
    }
    for (int i = offset; i < offset + n; ++i) {
        const unsigned bit = 1u << i;
        if (shared && ((file->shared | file->exclusive) & bit) == 0) {
            ++w.shared[i];
        } else if (!shared && (file->shared & bit) != 0) {
            --w.shared[i];  // this connection's shared lock becomes its exclusive one
        }
        w.exclusive[i] = w.exclusive[i] || !shared;
    }
    if (shared) {
        file->shared |= static_cast<uint8_t>(mask & ~file->exclusive);
    } else {
        file->shared &= static_cast<uint8_t>(~mask);
        file->exclusive |= mask;
    }
    return SQLITE_OK;
}

void x_shm_barrier(sqlite3_file* f) {
    real(f)->pMethods->xShmBarrier(real(f));
}

int x_shm_unmap(sqlite3_file* f, int delete_flag) {
    int rc = real(f)->pMethods->xShmUnmap(real(f), delete_flag);
    detach(self(f));
    return rc;
}

int x_fetch(sqlite3_file* f, sqlite3_int64 at, int n, void** out) {
    return real(f)->pMethods->xFetch(real(f), at, n, out);
}
int x_unfetch(sqlite3_file* f, sqlite3_int64 at, void* p) {
    return real(f)->pMethods->xUnfetch(real(f), at, p);
}

const sqlite3_io_methods k_methods = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
    File* file = self(f);
    *file = File{};
    sqlite3_file* unix_file = real(f);
    unix_file->pMethods = nullptr;
    int rc = g_real->xOpen(g_real, name, unix_file, flags, out_flags);
    if (unix_file->pMethods == nullptr) {
        return rc;  // nothing to close
    }
    // Every method forwards to the unix VFS's: a version below 3 (never on Linux) would lack some of them.
    if (unix_file->pMethods->iVersion < 3) {
        unix_file->pMethods->xClose(unix_file);
        return SQLITE_CANTOPEN;
    }
    if ((flags & SQLITE_OPEN_MAIN_DB) != 0) {
        file->path = name;
    }
    file->base.pMethods = &k_methods;
    return rc;
}

sqlite3_vfs* make() {
    g_real = sqlite3_vfs_find(nullptr);
    if (g_real == nullptr) {
        return nullptr;
    }
    static sqlite3_vfs vfs = *g_real;  // every other method is the unix VFS's own
    vfs.szOsFile = static_cast<int>(sizeof(File)) + g_real->szOsFile;
    vfs.pNext = nullptr;
    vfs.zName = k_name;
    vfs.xOpen = x_open;
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) {
        return nullptr;
    }
    return &vfs;
}

}  // namespace

const char* journal_vfs() {
    static sqlite3_vfs* vfs = make();
    return vfs != nullptr ? k_name : nullptr;
}

}  // namespace mpctl::daemon::sqlite
