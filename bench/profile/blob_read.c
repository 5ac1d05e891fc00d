// Reading a blob file back and hashing it (XXH3-128, as ArtifactStore::Get
// verifies a digest), the ways ArtifactStore could: a private writable
// mapping left to fault in (what Get does); the same mapping populated
// read-only (MAP_POPULATE) and then mprotect()ed writable; and pread() into
// a fresh buffer in 1 MiB chunks, each hashed while in cache, with and
// without MADV_HUGEPAGE on the buffer (what GetInto does for bytes values).
// Prints wall and CPU time per way; run it on a file already in page cache.
// Build: gcc -O2 -o /tmp/blob_read bench/profile/blob_read.c -lxxhash
// Run:   /tmp/blob_read FILE [ROUNDS]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static double Now(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t Mapped(int fd, size_t n, int populate) {
  void* p = mmap(NULL, n, populate ? PROT_READ : PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0);
  if (p == MAP_FAILED) exit(1);
  if (populate) mprotect(p, n, PROT_READ | PROT_WRITE);
  uint64_t h = XXH3_128bits(p, n).low64;
  munmap(p, n);
  return h;
}

static uint64_t Copied(int fd, size_t n, int huge) {
  const size_t kChunk = 1 << 20, kHuge = 2 << 20;
  uint8_t* p = malloc(n);
  if (huge) {
    uintptr_t lo = ((uintptr_t)p + kHuge - 1) & ~(kHuge - 1), hi = ((uintptr_t)p + n) & ~(kHuge - 1);
    if (hi > lo) madvise((void*)lo, hi - lo, MADV_HUGEPAGE);
  }
  XXH3_state_t* s = XXH3_createState();
  XXH3_128bits_reset(s);
  for (size_t d = 0; d < n;) {
    size_t k = n - d < kChunk ? n - d : kChunk;
    if (pread(fd, p + d, k, d) != (ssize_t)k) exit(1);
    XXH3_128bits_update(s, p + d, k);
    d += k;
  }
  uint64_t h = XXH3_128bits_digest(s).low64;
  XXH3_freeState(s);
  free(p);
  return h;
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) return 1;
  size_t n = st.st_size;
  int rounds = argc > 2 ? atoi(argv[2]) : 3;
  const char* names[] = {"map, faults", "map, populate+mprotect", "pread+hash", "pread+hash, huge"};
  for (int r = 0; r < rounds; ++r) {
    for (int way = 0; way < 4; ++way) {
      double w = Now(CLOCK_MONOTONIC), c = Now(CLOCK_PROCESS_CPUTIME_ID);
      uint64_t h = way < 2 ? Mapped(fd, n, way) : Copied(fd, n, way == 3);
      printf("%-24s wall %.3f s  cpu %.3f s  (%016llx)\n", names[way], Now(CLOCK_MONOTONIC) - w,
             Now(CLOCK_PROCESS_CPUTIME_ID) - c, (unsigned long long)h);
    }
  }
  return 0;
}
