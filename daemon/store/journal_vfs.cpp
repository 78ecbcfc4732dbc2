#include <array>
#include <cstddef>
#include <cstdint>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <string>
#include <unistd.h>

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

// What one connection holds.
struct Held {
    WalIndex* index = nullptr;
    uint8_t shared = 0;
    uint8_t exclusive = 0;
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

// The file SQLite hands the VFS: ours first, the unix VFS's after it.
struct File {
    sqlite3_file base;
    sqlite3_file* real;
    std::string* path;  // the main database's, for its WAL-index; null for other files
    Held* held;         // once the WAL-index is mapped
};

// The unix VFS's file follows ours at this offset: it needs pointer alignment.
static_assert(sizeof(File) % alignof(std::max_align_t) == 0);

File* self(sqlite3_file* f) {
    return reinterpret_cast<File*>(f);
}
sqlite3_file* real(sqlite3_file* f) {
    return self(f)->real;
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

void detach(File* f) {
    if (f->held == nullptr) {
        return;
    }
    std::lock_guard lock(mutex());
    WalIndex& w = *f->held->index;
    for (int i = 0; i < SQLITE_SHM_NLOCK; ++i) {
        if ((f->held->shared & (1u << i)) != 0) {
            --w.shared[i];
        }
        if ((f->held->exclusive & (1u << i)) != 0) {
            w.exclusive[i] = false;
        }
    }
    delete f->held;
    f->held = nullptr;
    if (--w.users == 0) {
        // Only now: closing any descriptor of the -shm file drops this process's fcntl locks on it, and
        // SQLite's own (its DMS byte) are gone only once every connection has unmapped.
        ::close(w.guard);
        indexes().erase(*f->path);
    }
}

int x_close(sqlite3_file* f) {
    detach(self(f));
    delete self(f)->path;
    self(f)->path = nullptr;
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
    if (file->held == nullptr) {
        if (file->path == nullptr) {
            return SQLITE_IOERR_SHMOPEN;  // SQLite maps a WAL-index only for a main database
        }
        std::lock_guard lock(mutex());
        WalIndex& w = indexes()[*file->path];
        if (w.users == 0) {
            w.guard = lock_guard_fd(*file->path + "-shm");
            if (w.guard < 0) {
                indexes().erase(*file->path);
                return SQLITE_BUSY;  // another process has the journal open: "database is locked"
            }
        }
        ++w.users;
        file->held = new Held{&w, 0, 0};
    }
    return real(f)->pMethods->xShmMap(real(f), region, size, extend, out);
}

int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    Held* h = self(f)->held;
    if (h == nullptr || offset < 0 || n < 1 || offset + n > SQLITE_SHM_NLOCK) {
        return SQLITE_IOERR_SHMLOCK;
    }
    const auto mask = static_cast<uint8_t>(((1u << (offset + n)) - 1) & ~((1u << offset) - 1));
    std::lock_guard lock(mutex());
    WalIndex& w = *h->index;
    if ((flags & SQLITE_SHM_UNLOCK) != 0) {
        for (int i = offset; i < offset + n; ++i) {
            if ((h->shared & (1u << i)) != 0) {
                --w.shared[i];
            }
            if ((h->exclusive & (1u << i)) != 0) {
                w.exclusive[i] = false;
            }
        }
        h->shared &= static_cast<uint8_t>(~mask);
        h->exclusive &= static_cast<uint8_t>(~mask);
        return SQLITE_OK;
    }
    if ((flags & SQLITE_SHM_SHARED) != 0) {
        for (int i = offset; i < offset + n; ++i) {
            if ((h->shared & (1u << i)) == 0 && w.exclusive[i] && (h->exclusive & (1u << i)) == 0) {
                return SQLITE_BUSY;
            }
        }
        for (int i = offset; i < offset + n; ++i) {
            if ((h->shared & (1u << i)) == 0 && (h->exclusive & (1u << i)) == 0) {
                ++w.shared[i];
                h->shared |= static_cast<uint8_t>(1u << i);
            }
        }
        return SQLITE_OK;
    }
    // Exclusive: nobody else may hold any of them, shared or exclusive.
    for (int i = offset; i < offset + n; ++i) {
        const bool mine_shared = (h->shared & (1u << i)) != 0;
        const bool mine_exclusive = (h->exclusive & (1u << i)) != 0;
        if ((w.exclusive[i] && !mine_exclusive) || w.shared[i] > (mine_shared ? 1 : 0)) {
            return SQLITE_BUSY;
        }
    }
    for (int i = offset; i < offset + n; ++i) {
        if ((h->shared & (1u << i)) != 0) {
            --w.shared[i];
        }
        w.exclusive[i] = true;
    }
    h->shared &= static_cast<uint8_t>(~mask);
    h->exclusive |= mask;
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
    file->base.pMethods = nullptr;
    file->real = reinterpret_cast<sqlite3_file*>(file + 1);
    file->real->pMethods = nullptr;
    file->path = nullptr;
    file->held = nullptr;
    int rc = g_real->xOpen(g_real, name, file->real, flags, out_flags);
    if (file->real->pMethods == nullptr) {
        return rc;  // nothing to close
    }
    // Every method forwards to the unix VFS's: a version below 3 (never on Linux) would lack some of them.
    if (file->real->pMethods->iVersion < 3) {
        file->real->pMethods->xClose(file->real);
        return SQLITE_CANTOPEN;
    }
    if ((flags & SQLITE_OPEN_MAIN_DB) != 0 && name != nullptr) {
        file->path = new std::string(name);
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
