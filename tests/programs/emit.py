"""Test program: writes what it is told, then exits 0 (or, with --stay, sleeps until killed).

Arguments are STREAM:LITERAL (a Python bytes literal, written as is) or STREAM:big:N (N bytes of
"A" and a newline), in order.
"""

from __future__ import annotations

import argparse
import ast
import os
import time

FDS = {"stdout": 1, "stderr": 2}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("items", nargs="*")
    parser.add_argument("--stay", action="store_true")
    args = parser.parse_args()
    for item in args.items:
        stream, _, what = item.partition(":")
        big = what.startswith("big:")
        data = b"A" * int(what[4:]) + b"\n" if big else ast.literal_eval(what)
        while data:
            data = data[os.write(FDS[stream], data) :]
    while args.stay:
        time.sleep(3600)


if __name__ == "__main__":
    main()
