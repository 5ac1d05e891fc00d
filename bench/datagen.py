"""Writes a case's input data in a separate process, so the harness stays
small: a process forked from the harness inherits its peak RSS as its own
ru_maxrss floor (Linux keeps the larger of the two across exec).

    datagen.py random PATH SIZE     random bytes (fixed seed); prints their CRC-32
    datagen.py repeated SIZE        prints the CRC-32 of SIZE bytes of 0x01
    datagen.py npy PATH NBYTES      uniform random float64 array; prints its sum
    datagen.py corner PATH ROWS     first + last value of that array seen as ROWS rows
                                    (as a DataFrame of ROWS columns stores it)"""

import random
import sys
import zlib


def main() -> None:
    kind = sys.argv[1]
    if kind == "random":
        data = random.Random(20261126).randbytes(int(sys.argv[3]))
        with open(sys.argv[2], "wb") as f:
            f.write(data)
        print(zlib.crc32(data))
    elif kind == "repeated":
        print(zlib.crc32(b"\x01" * int(sys.argv[2])))
    elif kind == "npy":
        import numpy as np

        x = np.random.default_rng(7).random(int(sys.argv[3]) // 8)
        np.save(sys.argv[2], x)
        print(repr(float(x.sum())))
    elif kind == "corner":
        import numpy as np

        x = np.load(sys.argv[2], mmap_mode="r").reshape(int(sys.argv[3]), -1).T
        print(repr(float(x.flat[0] + x.flat[-1])))
    else:
        raise SystemExit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
