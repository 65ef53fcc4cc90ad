"""roled's RSS with 50 chatty programs, for a tail_buffer setting (or another roled checkout).

    python -m bench.tail_memory [--tail-buffer BYTES] [--roled-path DIR] [--seconds S]

Each program writes 20 lines of 120 bytes every 50 ms on stdout and on stderr, so every stream
fills its buffer within seconds. Prints roled's peak and last RSS (MiB) sampled every 0.5 s after
a warm-up; compare runs with --tail-buffer 0 and the default, or --roled-path of an older tree.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

CHATTY = (
    "import sys, time\n"
    "line = sys.argv[1].ljust(119, 'x') + '\\n'\n"
    "while True:\n"
    "    sys.stdout.write(line * 20); sys.stdout.flush()\n"
    "    sys.stderr.write(line * 20); sys.stderr.flush()\n"
    "    time.sleep(0.05)\n"
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tail-buffer", default=None)
    parser.add_argument("--roled-path", default=None, help="a folder holding the roled package")
    parser.add_argument("--programs", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rt", dir="/tmp") as folder:
        root = Path(folder)
        (root / "chatty.py").write_text(CHATTY)
        (root / "supervisord.conf").write_text(
            "[supervisord]\n"
            + "".join(
                f"[program:p{n}]\ncommand={sys.executable} {root}/chatty.py p{n}\nstartsecs=0\n"
                for n in range(args.programs)
            )
        )
        env = {**os.environ, "ROLED_RUNTIME_DIR": str(root / "rt")}
        if args.tail_buffer is not None:
            env["ROLED_TAIL_BUFFER"] = args.tail_buffer
        if args.roled_path:
            env["PYTHONPATH"] = args.roled_path
        argv = [sys.executable, "-m", "roled", "-c", str(root / "supervisord.conf")]
        with open(os.devnull, "wb") as null:
            roled = subprocess.Popen(argv, env=env, stdout=null, stderr=null)
        try:
            process = psutil.Process(roled.pid)
            time.sleep(args.warmup)
            peak = last = 0
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline:
                last = process.memory_info().rss
                peak = max(peak, last)
                time.sleep(0.5)
        finally:
            roled.send_signal(signal.SIGTERM)
            roled.wait(60)
    mib = 1 << 20
    print(
        f"programs={args.programs} tail_buffer={args.tail_buffer or 'default'} "
        f"roled={args.roled_path or 'this tree'}: peak RSS {peak / mib:.1f} MiB, "
        f"last {last / mib:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
