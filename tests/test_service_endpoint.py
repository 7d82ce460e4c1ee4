"""The service's endpoint: a private runtime directory, one lock holder per repository across
real processes, stale sockets cleaned and live ones left, and peers checked by uid."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from looptui.service.endpoint import (
    MAX_SOCKET_PATH,
    Endpoint,
    ServiceError,
    ServiceLock,
    bind_listener,
    check_socket,
    clean_stale_socket,
    holder,
    peer_allowed,
    peer_uid,
    runtime_dir,
)
from process_support import exited, wait_for

NOBODY = 65534
IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(
    not IS_ROOT, reason="needs root: making files owned by another user takes chown"
)

# A process that waits for "go", tries the lock, says whether it got it, and holds what it
# got until its stdin closes.
LOCK_CHILD = textwrap.dedent(
    """\
    import json, sys
    from pathlib import Path
    from looptui.service.endpoint import Endpoint, ServiceLock
    fields = json.loads(sys.argv[1])
    lock = ServiceLock(Endpoint(**{key: Path(value) for key, value in fields.items()}))
    print("ready", flush=True)
    sys.stdin.readline()
    print("got" if lock.acquire() else "missed", flush=True)
    sys.stdin.read()
    lock.release()
    """
)

# A service's state for the moments after a SIGKILL: its main thread has exited (a zombie)
# while another thread, still tearing the process down, keeps the descriptors they share
# (the lock, the listener) open. Here that thread lasts until stdin closes.
DYING_HOLDER = textwrap.dedent(
    """\
    import ctypes, json, os, sys, threading
    from pathlib import Path
    from looptui.service.endpoint import Endpoint, ServiceLock, bind_listener
    fields, sys_exit = json.loads(sys.argv[1]), int(sys.argv[2])
    endpoint = Endpoint(**{key: Path(value) for key, value in fields.items()})
    lock = ServiceLock(endpoint)
    assert lock.acquire()
    listener = bind_listener(endpoint)  # the name keeps it open
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0))).start()
    print("holding", flush=True)
    ctypes.CDLL(None).syscall(sys_exit, 0)  # exit(2): this thread alone, not exit_group(2)
    """
)
SYS_EXIT = {"x86_64": 60, "aarch64": 93}.get(platform.machine())

Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def root() -> Iterator[Path]:
    """A short, private temporary directory: pytest's own would make socket paths too long."""
    directory = Path(tempfile.mkdtemp(prefix="lt-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def environ(root: Path) -> dict[str, str]:
    runtime = root / "run"
    runtime.mkdir(mode=0o700)
    return {"XDG_RUNTIME_DIR": str(runtime), "HOME": str(root / "home")}


@pytest.fixture
def endpoint(root: Path, environ: dict[str, str]) -> Endpoint:
    common_dir = root / "repo" / ".git"
    common_dir.mkdir(parents=True)
    return Endpoint.for_repository(common_dir, "repo", environ, short_root=root)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start real processes; every one is killed and reaped when the test ends."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, **options: object) -> subprocess.Popen[str]:
        process: subprocess.Popen[str] = subprocess.Popen(
            list(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            **options,  # type: ignore[call-overload]
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
    assert all(process.returncode is not None for process in started)


def read_line(process: subprocess.Popen[str], within: float = 15) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], within)
    assert ready, f"process {process.pid} said nothing within {within}s"
    return process.stdout.readline().strip()


def lock_child(spawn: Spawn, endpoint: Endpoint) -> subprocess.Popen[str]:
    fields = {key: str(value) for key, value in vars(endpoint).items()}
    process = spawn(sys.executable, "-c", LOCK_CHILD, json.dumps(fields))
    assert read_line(process) == "ready"
    return process


def go(process: subprocess.Popen[str]) -> None:
    assert process.stdin is not None
    process.stdin.write("go\n")
    process.stdin.flush()


def holding_child(spawn: Spawn, endpoint: Endpoint) -> subprocess.Popen[str]:
    process = lock_child(spawn, endpoint)
    go(process)
    assert read_line(process) == "got"
    return process


def finish(process: subprocess.Popen[str]) -> None:
    """Let a lock child release and exit normally."""
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=15) == 0


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def bind_and_abandon(path: Path) -> None:
    """What a killed service leaves: a socket file that nobody listens on."""
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()


# --- the runtime directory ---------------------------------------------------------------


def test_runtime_dir_is_private_under_xdg_runtime_dir(environ: dict[str, str]) -> None:
    directory = runtime_dir(environ)
    assert directory == Path(environ["XDG_RUNTIME_DIR"]) / "looptui"
    assert stat.S_ISDIR(os.lstat(directory).st_mode)
    assert mode(directory) == 0o700
    assert os.lstat(directory).st_uid == os.getuid()


def test_runtime_dir_falls_back_to_state_home(root: Path) -> None:
    missing_runtime = {"XDG_RUNTIME_DIR": str(root / "absent"), "HOME": str(root / "home")}
    assert runtime_dir(missing_runtime) == root / "home/.local/state/looptui/run"
    with_state = {"XDG_STATE_HOME": str(root / "state"), "HOME": str(root / "home")}
    directory = runtime_dir(with_state)
    assert directory == root / "state/looptui/run"
    assert mode(directory) == 0o700


def test_too_open_directory_is_tightened(environ: dict[str, str]) -> None:
    directory = Path(environ["XDG_RUNTIME_DIR"]) / "looptui"
    directory.mkdir()
    directory.chmod(0o755)
    assert runtime_dir(environ) == directory
    assert mode(directory) == 0o700


@needs_root
def test_directory_of_another_user_is_refused(environ: dict[str, str]) -> None:
    directory = Path(environ["XDG_RUNTIME_DIR"]) / "looptui"
    directory.mkdir(mode=0o755)
    os.chown(directory, NOBODY, NOBODY)
    with pytest.raises(ServiceError) as refused:
        runtime_dir(environ)
    message = str(refused.value)
    assert "\n" not in message
    assert str(directory) in message
    assert f"owned by uid {NOBODY}, not you (uid {os.getuid()})" in message
    assert mode(directory) == 0o755  # another user's directory is left as it was


def test_symlinked_runtime_dir_is_refused(root: Path, environ: dict[str, str]) -> None:
    elsewhere = root / "elsewhere"
    elsewhere.mkdir(mode=0o755)
    link = Path(environ["XDG_RUNTIME_DIR"]) / "looptui"
    link.symlink_to(elsewhere)
    with pytest.raises(ServiceError, match="symbolic link") as refused:
        runtime_dir(environ)
    assert str(link) in str(refused.value)
    assert mode(elsewhere) == 0o755  # the link's target was not chmodded through it


def test_dangling_symlink_and_plain_file_are_refused(root: Path, environ: dict[str, str]) -> None:
    place = Path(environ["XDG_RUNTIME_DIR"]) / "looptui"
    place.symlink_to(root / "nowhere")
    with pytest.raises(ServiceError, match="symbolic link"):
        runtime_dir(environ)
    place.unlink()
    place.write_text("not a directory")
    with pytest.raises(ServiceError, match="not a directory"):
        runtime_dir(environ)


# --- the endpoint ------------------------------------------------------------------------


def test_endpoint_is_keyed_by_the_resolved_common_dir(root: Path, environ: dict[str, str]) -> None:
    common_dir = root / "repo" / ".git"
    common_dir.mkdir(parents=True)
    spelled_otherwise = root / "alias"
    spelled_otherwise.symlink_to(root / "repo")
    first = Endpoint.for_repository(common_dir, "my repo/with:odd*chars!", environ)
    again = Endpoint.for_repository(spelled_otherwise / ".git", "my repo/with:odd*chars!", environ)
    other = root / "other" / ".git"
    other.mkdir(parents=True)
    different = Endpoint.for_repository(other, "my repo/with:odd*chars!", environ)

    assert first == again
    assert first.socket_path != different.socket_path
    assert first.directory == Path(environ["XDG_RUNTIME_DIR"]) / "looptui"
    key = first.socket_path.name.removesuffix(".sock")
    readable, digest = key.rsplit("-", 1)
    assert readable == "my_repo_with_odd_cha"  # 20 characters, only [A-Za-z0-9._-]
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert first.lock_path == first.directory / f"{key}.lock"
    assert first.pid_path == first.directory / f"{key}.pid"
    assert mode(first.directory) == 0o700


def test_long_runtime_path_falls_back_to_the_short_directory(root: Path) -> None:
    long_runtime = root / ("d" * 80)
    long_runtime.mkdir()
    common_dir = root / "repo" / ".git"
    common_dir.mkdir(parents=True)
    environ = {"XDG_RUNTIME_DIR": str(long_runtime), "HOME": str(root / "home")}

    endpoint = Endpoint.for_repository(common_dir, "repo", environ, short_root=root)

    assert len(os.fsencode(long_runtime / "looptui" / endpoint.socket_path.name)) > 100
    assert endpoint.directory == root / f"looptui-{os.getuid()}"
    assert len(os.fsencode(endpoint.socket_path)) <= MAX_SOCKET_PATH
    assert mode(endpoint.directory) == 0o700
    assert not (long_runtime / "looptui").exists()
    bind_listener(endpoint).close()  # the kernel accepts the path


def test_default_short_directory_is_under_tmp(root: Path) -> None:
    long_runtime = root / ("d" * 80)
    long_runtime.mkdir()
    environ = {"XDG_RUNTIME_DIR": str(long_runtime), "HOME": str(root / "home")}
    endpoint = Endpoint.for_repository(root, "repo", environ)
    assert endpoint.directory == Path(f"/tmp/looptui-{os.getuid()}")
    assert mode(endpoint.directory) == 0o700


# --- one holder --------------------------------------------------------------------------


def test_four_racing_processes_leave_exactly_one_holder(spawn: Spawn, endpoint: Endpoint) -> None:
    racers = [lock_child(spawn, endpoint) for _ in range(4)]
    for racer in racers:
        go(racer)
    outcomes = {racer.pid: read_line(racer) for racer in racers}

    winners = [pid for pid, outcome in outcomes.items() if outcome == "got"]
    assert len(winners) == 1, outcomes
    assert sorted(outcomes.values()) == ["got", "missed", "missed", "missed"]
    assert holder(endpoint) == winners[0]
    assert json.loads(endpoint.pid_path.read_text())["pid"] == winners[0]
    assert mode(endpoint.lock_path) == 0o600
    assert mode(endpoint.pid_path) == 0o600
    assert not ServiceLock(endpoint).acquire()


def test_killed_holder_leaves_a_stale_pid_file_and_no_holder(
    spawn: Spawn, endpoint: Endpoint
) -> None:
    child = holding_child(spawn, endpoint)
    assert holder(endpoint) == child.pid
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=15)

    assert endpoint.pid_path.exists()  # nobody got to remove it
    assert holder(endpoint) is None
    with ServiceLock(endpoint) as lock:
        assert lock.held
        assert holder(endpoint) == os.getpid()
    assert holder(endpoint) is None
    assert not endpoint.pid_path.exists()


def test_pid_file_without_a_held_lock_is_stale(endpoint: Endpoint) -> None:
    # A record that is right in every way (a live process, its true start time) but whose
    # lock nobody holds: what a holder that forked, or a confused tool, could leave.
    started = psutil.Process().create_time()
    endpoint.pid_path.write_text(json.dumps({"pid": os.getpid(), "started": started}))
    assert holder(endpoint) is None
    with ServiceLock(endpoint):
        assert holder(endpoint) == os.getpid()


def test_entering_a_held_lock_names_the_holder(spawn: Spawn, endpoint: Endpoint) -> None:
    child = holding_child(spawn, endpoint)
    lock = ServiceLock(endpoint)
    with pytest.raises(
        ServiceError, match=rf"already runs for this repository \(pid {child.pid}\)"
    ):
        lock.__enter__()
    assert not lock.held
    finish(child)
    assert holder(endpoint) is None
    with ServiceLock(endpoint) as taken:
        assert taken.held


def test_pid_file_naming_another_process_is_not_the_holder(
    spawn: Spawn, endpoint: Endpoint
) -> None:
    child = holding_child(spawn, endpoint)
    # As after a reused pid: a live process, but not the one that started at that time.
    endpoint.pid_path.write_text(json.dumps({"pid": os.getpid(), "started": 1.0}))
    assert holder(endpoint) is None
    endpoint.pid_path.write_text("garbage")
    assert holder(endpoint) is None
    finish(child)


@pytest.mark.skipif(SYS_EXIT is None, reason="the exit(2) syscall's number is not known here")
def test_a_holder_whose_main_thread_has_exited_is_no_holder_and_its_lock_follows(
    spawn: Spawn, endpoint: Endpoint
) -> None:
    fields = {key: str(value) for key, value in vars(endpoint).items()}
    child = spawn(sys.executable, "-c", DYING_HOLDER, json.dumps(fields), str(SYS_EXIT))
    assert read_line(child) == "holding"
    dying = psutil.Process(child.pid)
    wait_for(lambda: dying.status() == psutil.STATUS_ZOMBIE, "the main thread to exit", 15)

    # still held and still accepting, by the last thread: a zombie is not enough
    assert not exited(child.pid) and dying.num_threads() == 2
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.connect(str(endpoint.socket_path))  # queued in the backlog of nobody
    assert clean_stale_socket(endpoint) is False  # held: left alone
    assert holder(endpoint) is None  # but nobody to talk to: the next service may start

    assert child.stdin is not None
    child.stdin.close()  # its last thread ends now
    lock = ServiceLock(endpoint)
    assert lock.acquire()  # the next service waits the moment out instead of giving up
    assert exited(child.pid)
    lock.release()
    assert clean_stale_socket(endpoint) is True


# --- sockets -----------------------------------------------------------------------------


def test_stale_socket_is_removed(endpoint: Endpoint) -> None:
    bind_and_abandon(endpoint.socket_path)
    assert stat.S_ISSOCK(os.lstat(endpoint.socket_path).st_mode)
    assert clean_stale_socket(endpoint) is True
    assert not os.path.lexists(endpoint.socket_path)
    assert clean_stale_socket(endpoint) is False  # nothing left to clean


def test_socket_is_kept_while_another_process_holds_the_lock(
    spawn: Spawn, endpoint: Endpoint
) -> None:
    child = holding_child(spawn, endpoint)
    bind_and_abandon(endpoint.socket_path)
    assert clean_stale_socket(endpoint) is False
    assert os.path.lexists(endpoint.socket_path)
    finish(child)
    assert clean_stale_socket(endpoint) is True
    assert not os.path.lexists(endpoint.socket_path)


def test_listening_socket_is_never_removed(endpoint: Endpoint) -> None:
    listener = bind_listener(endpoint)
    try:
        assert clean_stale_socket(endpoint) is False
        assert stat.S_ISSOCK(os.lstat(endpoint.socket_path).st_mode)
    finally:
        listener.close()


def test_check_socket_refuses_what_is_not_ours(endpoint: Endpoint) -> None:
    path = endpoint.socket_path
    check_socket(path)  # missing is fine
    path.write_text("a regular file")
    with pytest.raises(ServiceError, match="not a socket") as refused:
        check_socket(path)
    assert str(path) in str(refused.value)
    with pytest.raises(ServiceError, match="not a socket"):
        bind_listener(endpoint)
    assert path.read_text() == "a regular file"  # refused, not replaced
    path.unlink()
    bind_and_abandon(path)
    check_socket(path)  # our own socket


@needs_root
def test_socket_of_another_user_is_refused(endpoint: Endpoint) -> None:
    path = endpoint.socket_path
    bind_and_abandon(path)
    os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    with pytest.raises(ServiceError) as refused:
        check_socket(path)
    message = str(refused.value)
    assert "\n" not in message
    assert str(path) in message and f"owned by uid {NOBODY}" in message
    with pytest.raises(ServiceError, match=f"uid {NOBODY}"):
        clean_stale_socket(endpoint)
    assert os.path.lexists(path)  # never removed


def test_bound_socket_is_owner_only_and_accepts_our_uid(endpoint: Endpoint) -> None:
    bind_and_abandon(endpoint.socket_path)  # a leftover from a dead service is replaced
    listener = bind_listener(endpoint)
    try:
        info = os.lstat(endpoint.socket_path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert listener.getblocking() is False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(endpoint.socket_path))
            listener.setblocking(True)
            listener.settimeout(10)
            accepted, _ = listener.accept()
            with accepted:
                assert peer_uid(accepted) == os.getuid()
                assert peer_allowed(accepted)
                assert peer_uid(client) == os.getuid()
    finally:
        listener.close()


def test_peer_uid_over_a_socketpair() -> None:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert peer_uid(left) == os.getuid()
        assert peer_allowed(right)


@needs_root
@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs /usr/bin/python3")
def test_another_users_connection_is_not_allowed(
    root: Path, spawn: Spawn, endpoint: Endpoint
) -> None:
    """A process of uid 65534 cannot reach the endpoint at all, and where it can reach a
    socket, `peer_allowed` says no. (This venv's python lives under /root, out of its reach,
    hence the system's.)"""
    connect = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        "    s.connect(sys.argv[1])\n"
        "except PermissionError:\n"
        "    print('denied', flush=True)\n"
        "else:\n"
        "    print('connected', flush=True)\n"
        "sys.stdin.read()\n"
    )
    as_nobody = {"user": NOBODY, "group": NOBODY, "extra_groups": [], "cwd": "/"}

    listener = bind_listener(endpoint)
    try:
        shut_out = spawn("/usr/bin/python3", "-c", connect, str(endpoint.socket_path), **as_nobody)
        assert read_line(shut_out) == "denied"
    finally:
        listener.close()

    open_dir = root / "open"
    open_dir.mkdir()
    open_dir.chmod(0o755)
    root.chmod(0o755)
    open_socket = open_dir / "open.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as exposed:
        exposed.bind(str(open_socket))
        open_socket.chmod(0o777)
        exposed.listen(1)
        exposed.settimeout(10)
        stranger = spawn("/usr/bin/python3", "-c", connect, str(open_socket), **as_nobody)
        assert read_line(stranger) == "connected"
        accepted, _ = exposed.accept()
        with accepted:
            assert peer_uid(accepted) == NOBODY
            assert not peer_allowed(accepted)


async def test_asyncio_serves_on_the_bound_listener(endpoint: Endpoint) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(echo, sock=bind_listener(endpoint))
    async with server:
        reader, writer = await asyncio.open_unix_connection(str(endpoint.socket_path))
        writer.write(b"hello\n")
        assert await asyncio.wait_for(reader.readline(), 10) == b"hello\n"
        writer.close()
        await writer.wait_closed()
