"""fork + _exit + waitpid of a Python process that imported cairn and holds
MB megabytes of touched heap: how a task's fixed cost grows with the
worker's size (the flow's imports).

    python bench/profile/fork_scaling.py MB"""

import os
import resource
import sys
import time
from pathlib import Path

import cairn.runtime.task  # noqa: F401 - the worker has it imported


def main() -> None:
    mb = int(sys.argv[1])
    ballast = [bytearray(64 << 10) for _ in range(mb * 16)]  # `mb` MB of touched heap
    n = 300
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss = int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
    child = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    print(f"worker rss {rss:4d} MB: fork+exit+wait {(time.perf_counter() - t0) / n * 1e3:.2f} ms wall, "
          f"parent cpu {(time.process_time() - c0) / n * 1e3:.2f} ms, child cpu {child / n * 1e3:.2f} ms")
    del ballast


if __name__ == "__main__":
    main()
