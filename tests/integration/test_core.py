"""The core at its edges (issue 11): signals at start-up, a planner that cannot hang PID 1, reloads
that never block the loop, roled's own failure contained, no survivors when roled dies."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import Layout, Roled, clean_environ, program, wait_until

Start = Callable[..., Roled]
SLEEPER = "[program:{name}]\ncommand=/bin/sleep 1000\nstartsecs=0\nstopwaitsecs=2\n"
ONE_SHOT = "[program:{name}]\ncommand=/bin/true\nautorestart=false\nstartsecs=0\n"


def _can_unshare() -> bool:
    try:
        done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


needs_pid_namespace = pytest.mark.skipif(
    not _can_unshare(), reason="PID namespaces are not permitted here (needs root)"
)


def planners(layout: Layout) -> list[psutil.Process]:
    """The planner processes of this test's roled (its config path is on their command line)."""
    return [p for p in processes_with(str(layout.main)) if "roled.plan" in p.cmdline()]


def sleepers(*names: str) -> str:
    return "".join(SLEEPER.format(name=name) for name in names)


def processes_with(marker: str) -> list[psutil.Process]:
    """Every process on the machine whose command line or environment mentions marker."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(process.info["cmdline"] or ()):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def marker(short_tmp: Path) -> Iterator[str]:
    """A word the test's programs carry on their command line; whatever still carries it at
    teardown is killed, so a test that finds survivors does not leave them behind."""
    word = f"roled-test-{short_tmp.name}"
    yield word
    for process in processes_with(word):
        process.kill()


# -- start-up --------------------------------------------------------------------------------------


def catches(pid: int, signum: int) -> bool:
    """Whether a process has a handler for signum (SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) & (1 << (signum - 1)))


@needs_pid_namespace
@pytest.mark.parametrize("delay", [0.0, 0.005, 0.05, 0.15, 0.3])
def test_sigterm_during_start_up_as_pid1_stops_with_0(
    layout: Layout, start_roled: Start, delay: float
) -> None:
    """A SIGTERM during start-up is never dropped: PID 1 exits 0 and starts nothing after it.

    The delay counts from roled's first handler: before it the interpreter itself is starting,
    and the kernel drops a PID 1's signals (a window as short as Python allows, 20-50 ms).
    """
    layout.role("web", sleepers("web"))
    roled = start_roled(layout, roles="web", pid1=True)
    pid = roled.pid
    wait_until(lambda: catches(pid, signal.SIGTERM), 10, "roled's first handler")
    time.sleep(delay)
    os.kill(pid, signal.SIGTERM)
    assert roled.wait(30) == 0, roled.stderr
    assert "exiting with code 0" in roled.reason_line()


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_sigterm_during_start_up_not_pid1_leaves_nothing(
    layout: Layout, start_roled: Start, delay: float
) -> None:
    """Not PID 1 (docker run --init, a shell): exit 0, no planner left, no runtime directory."""
    layout.role("web", sleepers("web"))
    roled = start_roled(layout, roles="web")
    wait_until(lambda: catches(roled.pid, signal.SIGTERM), 10, "roled's first handler")
    time.sleep(delay)
    roled.popen.send_signal(signal.SIGTERM)
    assert roled.wait(30) == 0, roled.stderr
    assert not planners(layout)
    assert not roled.runtime_dir.exists()


def test_include_that_hangs_the_planner_is_exit_2_not_a_hang(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """A planner that cannot finish (a config file that never gives its content) is killed at
    its deadline: one line, exit 2, nothing left."""
    fifo = short_tmp / "hang.conf"
    os.mkfifo(fifo)
    layout.write_main(f"[supervisord]\n[include]\nfiles = {fifo}\n")
    layout.role("web", sleepers("web"))
    roled = start_roled(layout, roles="web", env={"ROLED_PLAN_TIMEOUT": "2"})
    assert roled.wait(30) == 2, roled.stderr
    lines = roled.stderr.splitlines()
    assert len(lines) == 1, roled.stderr
    assert lines[0].startswith("roled: error: ")
    assert not planners(layout)
    assert not roled.runtime_dir.exists()


# -- reloads ---------------------------------------------------------------------------------------


def test_reload_with_a_hung_planner_still_serves_a_stop(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """While a reload waits on a planner that hangs, a SIGTERM is served at once: exit 0."""
    layout.role("web", sleepers("web"))
    roled = start_roled(layout, roles="web", env={"ROLED_PLAN_TIMEOUT": "60"})
    roled.wait_states({"web": "RUNNING"})
    fifo = short_tmp / "hang.conf"
    os.mkfifo(fifo)
    layout.write_main(f"[supervisord]\n[include]\nfiles = {fifo}\n")
    roled.send(signal.SIGHUP)
    wait_until(lambda: planners(layout), 10, "the reload's planner")
    roled.send(signal.SIGTERM)
    assert roled.wait(15) == 0, roled.stderr
    assert not planners(layout)


def test_reload_past_its_deadline_is_refused_and_keeps_running(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """A reload whose planner hangs is refused in one line at the deadline; programs run on."""
    layout.role("web", sleepers("web"))
    roled = start_roled(layout, roles="web", env={"ROLED_PLAN_TIMEOUT": "1"})
    roled.wait_states({"web": "RUNNING"})
    pid = roled.client().process("web").pid
    fifo = short_tmp / "hang.conf"
    os.mkfifo(fifo)
    layout.write_main(f"[supervisord]\n[include]\nfiles = {fifo}\n")
    roled.send(signal.SIGHUP)
    wait_until(lambda: "reload refused" in roled.stderr, 20, "the reload to be refused")
    assert roled.popen.poll() is None
    assert roled.client().process("web").pid == pid
    roled.send(signal.SIGTERM)
    assert roled.wait(15) == 0, roled.stderr


def test_second_sighup_during_a_reload_is_applied(layout: Layout, start_roled: Start) -> None:
    """Two quick SIGHUPs with a change between them: the second change is applied too."""
    layout.role("web", sleepers("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    layout.role("web", sleepers("web", "extra"))
    roled.send(signal.SIGHUP)
    layout.role("web", sleepers("web", "extra", "third"))
    roled.send(signal.SIGHUP)
    roled.wait_states({"web": "RUNNING", "extra": "RUNNING", "third": "RUNNING"}, timeout=30)
    roled.send(signal.SIGTERM)
    assert roled.wait(15) == 0, roled.stderr


def test_symlink_loop_at_reload_is_refused_not_fatal(layout: Layout, start_roled: Start) -> None:
    """A broken roles folder at reload is one refused reload; roled and programs run on."""
    layout.role("web", sleepers("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    loop = layout.roles / "loop.conf"
    loop.symlink_to(loop)
    roled.send(signal.SIGHUP)
    wait_until(lambda: "reload refused" in roled.stderr, 20, "the reload to be refused")
    assert "Traceback" not in roled.stderr
    assert roled.popen.poll() is None
    roled.send(signal.SIGTERM)
    assert roled.wait(15) == 0, roled.stderr


# -- exit policies --------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(3))
def test_exit_when_done_waits_for_the_long_running_program(
    layout: Layout, start_roled: Start, attempt: int
) -> None:
    """An instant one-shot beside a long-running program does not end the run (item 7)."""
    layout.role("web", ONE_SHOT.format(name="once") + sleepers("web"))
    roled = start_roled(layout, roles="web", env={"ROLED_EXIT_WHEN_DONE": "true"})
    roled.wait_states({"once": "EXITED", "web": "RUNNING"})
    time.sleep(0.5)
    assert roled.popen.poll() is None, roled.stderr
    roled.send(signal.SIGTERM)
    assert roled.wait(15) == 0


def test_exit_when_done_survives_a_reload_of_a_running_program(
    layout: Layout, start_roled: Start
) -> None:
    """A SIGHUP that changes a running program stops it for the reload: that is not done."""
    layout.role("web", sleepers("web"))
    roled = start_roled(layout, roles="web", env={"ROLED_EXIT_WHEN_DONE": "true"})
    roled.wait_states({"web": "RUNNING"})
    pid = roled.client().process("web").pid
    layout.role("web", sleepers("web").replace("stopwaitsecs=2", "stopwaitsecs=3"))
    roled.send(signal.SIGHUP)
    wait_until(lambda: "reloaded:" in roled.stderr, 20, "the reload")
    roled.wait_states({"web": "RUNNING"})
    assert roled.client().process("web").pid != pid
    assert roled.popen.poll() is None, roled.stderr
    roled.send(signal.SIGTERM)
    assert roled.wait(15) == 0


def test_main_program_in_a_group_ends_the_container(layout: Layout, start_roled: Start) -> None:
    """ROLED_MAIN names a program of a [group:x] by its own name (item 8)."""
    layout.role(
        "web",
        sleepers("other") + f"[program:app]\ncommand={program('exit_with', '7', '1.5')}\n"
        "startsecs=0\nautorestart=false\n"
        "[group:grp]\nprograms=app,other\n",
    )
    roled = start_roled(layout, roles="web", env={"ROLED_MAIN": "app"})
    assert roled.wait(30) == 7, roled.stderr
    assert "main program 'grp:app' exited" in roled.reason_line()


def test_noncritical_numprocs_process_is_forgiven(layout: Layout, start_roled: Start) -> None:
    """ROLED_NONCRITICAL names one process of numprocs; its FATAL is a single warning."""
    layout.role(
        "web",
        "[program:worker]\ncommand=/bin/false\nnumprocs=2\nprocess_name=worker_%(process_num)02d\n"
        "startretries=0\nstartsecs=1\n" + sleepers("web"),
    )
    roled = start_roled(layout, roles="web", env={"ROLED_NONCRITICAL": "worker_*"})
    roled.wait_states({"worker:worker_00": "FATAL", "worker:worker_01": "FATAL", "web": "RUNNING"})
    time.sleep(0.5)
    assert roled.popen.poll() is None, roled.stderr
    warnings = [line for line in roled.stderr.splitlines() if "non-critical" in line]
    assert len(warnings) == 2, roled.stderr
    roled.send(signal.SIGTERM)
    assert roled.wait(15) == 0


# -- roled's own failure and death ----------------------------------------------------------------


FAULTY = """
import sys
from roled import supervisor
calls = 0
original = supervisor.Client.processes
def processes(self):
    global calls
    calls += 1
    if calls == 3:
        raise RuntimeError("injected fault")
    return original(self)
supervisor.Client.processes = processes
from roled.__main__ import main
sys.exit(main())
"""


def test_internal_error_stops_everything_and_exits_5(
    layout: Layout, short_tmp: Path, marker: str
) -> None:
    """A bug inside roled's loop: one line, supervisord and every program stopped, exit 5."""
    layout.role("web", sleepers("web").replace("/bin/sleep 1000", f"/bin/sleep 1000 {marker}"))
    script = short_tmp / "faulty.py"
    script.write_text(FAULTY)
    runtime = short_tmp / "rt"
    env = clean_environ(ROLES="web", ROLED_RUNTIME_DIR=str(runtime), ROLED_HANG_TIMEOUT="0.2")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, str(script), "-c", str(layout.main)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 5, done.stderr
    assert "roled: ERROR internal error, stopping everything: RuntimeError: injected fault" in (
        done.stderr
    )
    assert not processes_with(marker)
    assert not runtime.exists()


def marked_sleeper(name: str, marker: str) -> str:
    """A sleeper whose command line holds marker (``sleep 1000 MARKER`` would not start)."""
    command = f'{sys.executable} -c "import time; time.sleep(1000)" {marker}'
    return sleepers(name).replace("/bin/sleep 1000", command)


def test_sigkill_of_roled_leaves_no_supervisord(
    layout: Layout, start_roled: Start, marker: str
) -> None:
    """Not PID 1, roled SIGKILLed: supervisord gets its parent-death signal and stops all."""
    layout.role("web", marked_sleeper("web", marker))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    assert processes_with(marker)
    supervisord = roled.supervisord()
    roled.popen.kill()
    roled.popen.wait(10)
    wait_until(lambda: not supervisord.is_running(), 20, "supervisord to end")
    wait_until(lambda: not processes_with(marker), 20, "the programs to end")


# Connects to supervisord's socket and, once told, sends a startProcess request with the user
# and password given; it says when it has done each.
START_LATE = """
import base64, socket, sys, xmlrpc.client
path, user, password = sys.argv[1:]
body = xmlrpc.client.dumps(("late", False), "supervisor.startProcess").encode()
token = base64.b64encode(f"{user}:{password}".encode()).decode()
head = (
    f"POST /RPC2 HTTP/1.0\\r\\nContent-Type: text/xml\\r\\nContent-Length: {len(body)}\\r\\n"
    f"Authorization: Basic {token}\\r\\n\\r\\n"
)
sock = socket.socket(socket.AF_UNIX)
sock.connect(path)
print("connected", flush=True)
sys.stdin.readline()
sock.sendall(head.encode() + body)
print("sent", flush=True)
sock.recv(65536)
"""


def test_sigkill_of_roled_while_supervisord_starts_a_program_leaves_nothing_running(
    layout: Layout, start_roled: Start, marker: str, short_tmp: Path
) -> None:
    """roled SIGKILLed just before supervisord starts a program (a restart, or a request):
    supervisord opens the program's log FIFO, whose reader was roled. That open waited for
    ever, deaf to the parent-death SIGTERM, and the other programs kept running.

    supervisord has accepted the connection, then is stopped while the request comes and roled
    dies, so that it reads the request, and starts the program, before its SIGTERM every time."""
    sock = short_tmp / "user.sock"
    layout.write_main(f"[supervisord]\n[unix_http_server]\nfile={sock}\nusername=u\npassword=p\n")
    late = marked_sleeper("late", marker) + "autostart=false\n"
    layout.role("web", marked_sleeper("web", marker) + late)
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING", "late": "STOPPED"})
    supervisord = roled.supervisord()
    fds = supervisord.num_fds()
    client = subprocess.Popen(
        [sys.executable, "-c", START_LATE, str(sock), "u", "p"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdin is not None
        assert client.stdout is not None
        assert client.stdout.readline() == "connected\n"
        wait_until(lambda: supervisord.num_fds() > fds, 20, "supervisord to accept")
        supervisord.suspend()
        client.stdin.write("go\n")
        client.stdin.flush()
        assert client.stdout.readline() == "sent\n"
        roled.popen.kill()
        roled.popen.wait(10)
        supervisord.resume()
        wait_until(lambda: not supervisord.is_running(), 20, "supervisord to end")
        wait_until(lambda: not processes_with(marker), 20, "the programs to end")
    finally:
        client.kill()
        client.wait(10)
        with contextlib.suppress(psutil.Error):
            supervisord.resume()


# -- stopping -------------------------------------------------------------------------------------


def test_hung_supervisord_and_sigterm_is_3(layout: Layout, start_roled: Start) -> None:
    """SIGTERM to a roled whose supervisord hangs notices the hang (3), not the deadline (4)."""
    layout.role("web", sleepers("web"))
    roled = start_roled(
        layout, roles="web", env={"ROLED_HANG_TIMEOUT": "2", "ROLED_SHUTDOWN_TIMEOUT": "60"}
    )
    roled.wait_states({"web": "RUNNING"})
    roled.supervisord().suspend()
    roled.send(signal.SIGTERM)
    assert roled.wait(40) == 3, roled.stderr
    assert "supervisord stopped answering" in roled.reason_line()


def test_sigterm_then_sigint_is_named_as_such(layout: Layout, start_roled: Start) -> None:
    """A SIGINT after a SIGTERM kills the slow stop, and the reason says so (item 14)."""
    layout.role(
        "web",
        f"[program:slow]\ncommand={program('print_signals', '--ignore', 'SIGTERM')}\n"
        "stopwaitsecs=30\nstartsecs=0\n",
    )
    roled = start_roled(layout, roles="web")
    roled.wait_states({"slow": "RUNNING"})
    wait_until(lambda: "ready" in roled.stdout, 10, "the program's handlers")
    roled.send(signal.SIGTERM)
    wait_until(lambda: "stopping all programs" in roled.stderr, 10, "the stop")
    time.sleep(0.6)
    roled.send(signal.SIGINT)
    assert roled.wait(20) == 4, roled.stderr
    assert "SIGINT after SIGTERM while stopping" in roled.reason_line()


def test_runtime_dir_on_its_own_mount_stops_cleanly(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """A runtime directory that is a tmpfs mount point cannot be removed: still exit 0 (item 13)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    runtime = short_tmp / "mnt"
    runtime.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", str(runtime)], check=True)
    try:
        layout.role("web", sleepers("web"))
        roled = start_roled(layout, roles="web", runtime_dir=runtime)
        roled.wait_states({"web": "RUNNING"})
        roled.send(signal.SIGTERM)
        assert roled.wait(15) == 0, roled.stderr
        assert "Traceback" not in roled.stderr
        assert list(runtime.iterdir()) == []
    finally:
        subprocess.run(["umount", str(runtime)], check=False)


def test_signal_handlers_are_put_back(short_tmp: Path) -> None:
    """After the loop, SIGPIPE and SIGXFSZ stay ignored and SIGINT is Python's again."""
    script = (
        "import signal\n"
        "from roled.signals import SignalQueue\n"
        "before = {s: signal.getsignal(s) for s in signal.valid_signals() - {9, 19}}\n"
        "queue = SignalQueue(); queue.install(); queue.uninstall()\n"
        "after = {s: signal.getsignal(s) for s in before}\n"
        "assert before == after, {s for s in before if before[s] != after[s]}\n"
        "assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN\n"
        "assert signal.getsignal(signal.SIGINT) == signal.default_int_handler\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_signal_wakes_the_loop_until_its_pipe_is_drained() -> None:
    """The loop drains the wake-up pipe only when its wait found it readable: a signal makes
    it readable, the queue holds the signal whether drained or not, and an undrained pipe keeps
    waking the wait."""
    script = (
        "import os, select, signal\n"
        "from roled.signals import SignalQueue\n"
        "queue = SignalQueue(); queue.install()\n"
        "assert select.select([queue.fileno], [], [], 0)[0] == []\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"
        "assert select.select([queue.fileno], [], [], 5)[0] == [queue.fileno]\n"
        "assert queue.take(drain=False) == [signal.SIGUSR1]\n"
        "assert select.select([queue.fileno], [], [], 0)[0] == [queue.fileno]\n"
        "assert queue.take() == []\n"
        "assert select.select([queue.fileno], [], [], 0)[0] == []\n"
        "queue.uninstall()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
