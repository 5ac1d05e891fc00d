"""Reads the latest run of a flow back through the client (not timed) and
prints a JSON summary: whether it succeeded, and each named artifact of its
end task (bytes as length and CRC-32, arrays as shape and sum)."""

import json
import sys
import zlib

from cairn import Flow


def summarize(value):
    if isinstance(value, (bytes, bytearray)):
        return {"len": len(value), "crc32": zlib.crc32(value)}
    if type(value).__name__ == "ndarray":
        return {"shape": list(value.shape), "sum": float(value.sum())}
    return value


def main() -> None:
    flow, names = sys.argv[1], sys.argv[2:]
    run = Flow(flow).latest_run
    out = {"run": str(run.id), "successful": bool(run.successful)}
    data = run.data
    for name in names:
        out[name] = summarize(getattr(data, name))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
