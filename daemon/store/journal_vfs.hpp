#pragma once
// The VFS the daemon opens its journal with: SQLite's own unix VFS, except that the WAL-index locks (the
// eight lock bytes of the -shm file that order readers, the writer and checkpoints) are kept in this
// process's memory instead of being taken with fcntl() on every transaction. Measured on the 2-core VM:
// each commit took six fcntl calls (the read mark moved past our own last commit, then the write lock),
// a fifth of the daemon's CPU time under a stream of single-value queue puts and gets.
//
// In-process locks only order this process's connections (the committing one and the checkpointer's), so
// the journal must be no other process's while the daemon has it open: the first connection takes an
// open-file-description write lock on all eight bytes, which every other process's SQLite meets as
// "database is locked" (the daemon's state-dir lock already keeps a second daemon out). What
// locking_mode=EXCLUSIVE would give one connection, for the two the daemon needs. Linux: F_OFD_SETLK.

namespace mpctl::daemon::sqlite {

// The VFS's name for sqlite3_open_v2, registered on first use (thread-safe). Null if SQLite has no default
// VFS to build on (never on Linux); callers then open with the default.
[[nodiscard]] const char* journal_vfs();

}  // namespace mpctl::daemon::sqlite
