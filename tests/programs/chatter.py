"""Test program: writes COUNT numbered lines to stdout and to stderr, then exits 0.

Lines are cut into writes of odd sizes, so writes end mid-line; ``line()`` is what the test
expects back. With --stdout-only, stderr stays quiet; with --size N every line has N bytes;
with --stamp the first line says when it started (time.monotonic(), shared by all processes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

STREAMS = {"stdout": 1, "stderr": 2}


def line(name: str, stream: str, number: int, size: int = 0) -> str:
    """The text of one line, without its newline."""
    text = f"{name} {stream} {number:07d} "
    if size:
        return (text + "x" * size)[: size - 1]
    return text + "abcdefghij" * (number % 13)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("count", type=int)
    parser.add_argument("--stdout-only", action="store_true")
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--print", action="store_true", help="one print() a line, as apps do")
    parser.add_argument("--stamp", action="store_true", help="first line: start <monotonic>")
    args = parser.parse_args()
    streams = ["stdout"] if args.stdout_only else ["stdout", "stderr"]
    if args.stamp:
        print(f"start {time.monotonic()}", flush=True)
    if args.print:
        for number in range(args.count):
            print(line(args.name, "stdout", number, args.size))
        sys.stdout.flush()
        return
    batch = 997
    for start in range(0, args.count, batch):
        for stream in streams:
            numbers = range(start, min(start + batch, args.count))
            data = "".join(line(args.name, stream, n, args.size) + "\n" for n in numbers).encode()
            cut = 4093 + start % 1000
            for offset in range(0, len(data), cut):
                chunk = data[offset : offset + cut]
                while chunk:
                    chunk = chunk[os.write(STREAMS[stream], chunk) :]


if __name__ == "__main__":
    main()
