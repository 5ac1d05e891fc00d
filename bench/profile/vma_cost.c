// What each mapping (VMA) of a process adds to fork + _exit + waitpid, without
// Python: the same loop with 0 and with 200 extra small anonymous mappings,
// one page of each touched (as a shared library's data segment would be).
// Build: gcc -O2 -o /tmp/vma_cost bench/profile/vma_cost.c
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static double fork_exit_us(int reps) {
  double t = now();
  for (int i = 0; i < reps; i++) {
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
  }
  return (now() - t) / reps * 1e6;
}

int main(void) {
  const int extra = 100, reps = 2000;
  printf("%4d extra VMAs: %6.1f us per fork+exit+wait\n", 0, fork_exit_us(reps));
  for (int i = 0; i < extra; i++) {
    // Two pages with different protections: two VMAs that cannot merge.
    char* p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p[0] = 1;
    mprotect(p + 4096, 4096, PROT_READ);
  }
  printf("%4d extra VMAs: %6.1f us per fork+exit+wait\n", 2 * extra, fork_exit_us(reps));
  return 0;
}
