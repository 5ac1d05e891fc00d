// Writing 1 GiB from anonymous memory into a new file's page cache, three
// ways, alternating: write(); one thread copying into a shared mapping of
// the preallocated file; two threads doing so, each on its half (what
// ArtifactStore::Put does for raw blobs of 32 MiB and more). On a VM whose
// free memory goes back to the host, fresh page cache is what costs.
// Build: gcc -O2 -pthread -o /tmp/blob_write bench/profile/blob_write.c
// Run:   /tmp/blob_write DIR [ROUNDS]
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static const size_t kSize = (size_t)1 << 30;
static char* src;
static char* dst;
static int threads;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void* copy_part(void* arg) {
  size_t part = kSize / threads, i = (size_t)arg;
  memcpy(dst + part * i, src + part * i, part);
  return NULL;
}

static double store(const char* path, int mode) {
  unlink(path);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  double t = now();
  if (mode == 0) {
    for (size_t done = 0; done < kSize;) done += (size_t)write(fd, src + done, kSize - done);
  } else {
    threads = mode;
    fallocate(fd, 0, 0, kSize);
    dst = mmap(NULL, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    pthread_t th[2];
    for (long i = 0; i < threads; i++) pthread_create(&th[i], NULL, copy_part, (void*)i);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    munmap(dst, kSize);
  }
  close(fd);
  double elapsed = now() - t;
  unlink(path);
  return elapsed;
}

int main(int argc, char** argv) {
  if (argc < 2) return fprintf(stderr, "usage: %s DIR [ROUNDS]\n", argv[0]), 2;
  char path[4096];
  snprintf(path, sizeof(path), "%s/blob_write.tmp", argv[1]);
  int rounds = argc > 2 ? atoi(argv[2]) : 3;
  src = mmap(NULL, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  memset(src, 7, kSize);
  const char* names[] = {"write()", "mapped, 1 thread", "mapped, 2 threads"};
  for (int r = 0; r < rounds; r++) {
    for (int mode = 0; mode < 3; mode++) printf("%-18s %.3f s\n", names[mode], store(path, mode));
  }
  return 0;
}
