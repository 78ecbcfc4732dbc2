#pragma once
// Damaging a journal on purpose, the way a disk, a crash of the file system or a stray write would, for the
// tests of what a start and `mpctld --recover` make of it. SQLite's dbstat table says which pages hold
// which table, so a test damages exactly the table it means to.

#include <cstdint>
#include <string>
#include <vector>

namespace mpctl::test {

// Folds the WAL a killed daemon left into the database file, as the next open would have: afterwards
// every page of the journal is in the file itself, where the damage below lands.
void checkpoint_journal(const std::string& db_path);

// The leaf pages (1-based page numbers) that hold TABLE's rows, in file order. Checkpoint first.
std::vector<int64_t> leaf_pages(const std::string& db_path, const std::string& table);

// Overwrites page PAGE with a byte pattern that no b-tree page starts with.
void overwrite_page(const std::string& db_path, int64_t page);

// Overwrites the first 100 bytes: the header, with SQLite's magic string. SQLite calls the file "not a
// database".
void overwrite_header(const std::string& db_path);

// The whole file's bytes (empty if it cannot be read).
std::string file_bytes(const std::string& path);

}  // namespace mpctl::test
