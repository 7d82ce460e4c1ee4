"""Where a repository's service listens, who may connect, and the lock that keeps it to one.

Every file here (socket, lock, pid file) lives in a directory that only the user can enter:
real (never a symbolic link), owned by them, mode 0o700. That directory, not the socket's
own mode, is what keeps other users out; `peer_allowed` checks each connection again, in
case the socket is ever reached some other way.

One service per repository is an exclusive `flock` on the lock file, held for the life of
the service process: the kernel drops it when the process dies, however it dies, so a lock
can never be stale. The pid file only says *who* holds it and is trusted only while the lock
is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import socket
import stat
import struct
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import psutil

from looptui.engine.errors import LooptuiError


class ServiceError(LooptuiError):
    """The service's endpoint cannot be used, or not safely; the message is one line."""


MAX_SOCKET_PATH = 100
"""Longest socket path used, in bytes: the kernel's limit (`sun_path`) is 107 plus a NUL."""

SHORT_ROOT = Path("/tmp")
"""Where `looptui-<uid>/` goes when the runtime directory makes socket paths too long."""

_FIX_HINT = "remove it or set XDG_RUNTIME_DIR"
_NAME_LENGTH = 20
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]")
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_BACKLOG = 64
# How long `acquire` keeps trying while the lock is held but no live holder is recorded:
# a `holder()` probe or a starting service holds it for moments only.
_ACQUIRE_GRACE = 0.5
_ACQUIRE_RETRY = 0.01
# psutil's start times have the kernel's tick (10 ms) as resolution.
_START_TOLERANCE = 0.05


def runtime_dir(environ: Mapping[str, str]) -> Path:
    """The private directory for services' sockets and locks, created if need be:
    `$XDG_RUNTIME_DIR/looptui` when XDG_RUNTIME_DIR names an existing directory, else
    `$XDG_STATE_HOME/looptui/run` (by default `~/.local/state/looptui/run`).

    Raises ServiceError when it is a symbolic link, not a directory, or another user's; a
    directory of ours that is open to group or others is tightened to 0o700."""
    return private_directory(_runtime_dir_path(environ))


def private_directory(path: Path) -> Path:
    """Create `path` (mode 0o700, parents as needed) and make sure it is ours alone: a real
    directory owned by this uid with no access for group or others. Returns `path`."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except FileExistsError:
        pass  # something that is not a directory is there: the check below says what
    except OSError as exc:
        raise ServiceError(f"cannot create {path}: {exc.strerror or exc}") from None
    _check_private_directory(path)
    return path


def _runtime_dir_path(environ: Mapping[str, str]) -> Path:
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    # The XDG spec says to ignore a relative XDG_RUNTIME_DIR.
    if os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "looptui"
    return _state_home(environ) / "run"


def _state_home(environ: Mapping[str, str]) -> Path:
    """`locations.state_home()`, computed from `environ` instead of `os.environ`."""
    home = environ.get("HOME") or str(Path.home())
    state = environ.get("XDG_STATE_HOME") or str(Path(home) / ".local" / "state")
    return Path(state) / "looptui"


def _check_private_directory(path: Path) -> None:
    try:
        info = os.lstat(path)  # never follow a symbolic link
    except OSError as exc:
        raise ServiceError(f"cannot use {path}: {exc.strerror or exc}") from None
    me = os.getuid()
    if stat.S_ISLNK(info.st_mode):
        raise ServiceError(f"refusing {path}: it is a symbolic link; {_FIX_HINT}")
    if not stat.S_ISDIR(info.st_mode):
        raise ServiceError(f"refusing {path}: it is not a directory; {_FIX_HINT}")
    if info.st_uid != me:
        raise ServiceError(
            f"refusing {path}: it is owned by uid {info.st_uid}, not you (uid {me}); {_FIX_HINT}"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        _tighten(path, info)


def _tighten(path: Path, checked: os.stat_result) -> None:
    """chmod 0o700 through a descriptor opened without following links, and only if it is
    still the directory that was checked (a path-based chmod would follow a swapped-in link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ServiceError(f"cannot use {path}: {exc.strerror or exc}") from None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (checked.st_dev, checked.st_ino):
            raise ServiceError(f"refusing {path}: it changed while being checked")
        os.fchmod(fd, 0o700)
    except OSError as exc:
        raise ServiceError(f"cannot make {path} private: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def repository_key(common_dir: Path, name: str) -> str:
    """`<name>-<hash>`: the name (first 20 characters, others than [A-Za-z0-9._-] replaced)
    for people, 12 hex digits of the sha256 of the resolved git common directory so that
    every worktree and every spelling of the path finds the same service."""
    readable = _UNSAFE_CHARACTERS.sub("_", name[:_NAME_LENGTH])
    digest = hashlib.sha256(str(common_dir.resolve()).encode()).hexdigest()[:12]
    return f"{readable}-{digest}"


@dataclass(frozen=True)
class Endpoint:
    """The files through which one repository's service is found: its socket, the lock that
    makes it the only one, and the pid file naming the lock's holder."""

    directory: Path
    socket_path: Path
    lock_path: Path
    pid_path: Path

    @classmethod
    def for_repository(
        cls,
        common_dir: Path,
        name: str,
        environ: Mapping[str, str],
        *,
        short_root: Path = SHORT_ROOT,
        state_dir: Path | None = None,
    ) -> Endpoint:
        """The endpoint of the repository whose git common directory is `common_dir`, in
        `runtime_dir(environ)`, which is created and checked.

        A Unix socket's path must fit in 107 bytes: when the socket's path there would pass
        100 bytes, every file of the endpoint goes to `<short_root>/looptui-<uid>/` instead
        (`/tmp/looptui-<uid>/` by default), created and checked the same way. The choice
        depends only on `environ`, so processes that share it agree on the endpoint.

        `state_dir` (the repository's own private directory, by default the socket's) holds
        the lock and the pid file: there every process finds the same lock whatever its
        environment says, so that one repository never gets two services."""
        key = repository_key(common_dir, name)
        endpoint = cls._in(_runtime_dir_path(environ), key, state_dir)
        if len(os.fsencode(endpoint.socket_path)) > MAX_SOCKET_PATH:
            endpoint = cls._in(short_root / f"looptui-{os.getuid()}", key, state_dir)
            if len(os.fsencode(endpoint.socket_path)) > MAX_SOCKET_PATH:
                raise ServiceError(
                    f"cannot place the service socket: {endpoint.socket_path} is longer "
                    f"than {MAX_SOCKET_PATH} bytes; set XDG_RUNTIME_DIR to a shorter directory"
                )
        private_directory(endpoint.directory)
        if state_dir is not None:
            private_directory(state_dir)
        return endpoint

    @classmethod
    def _in(cls, directory: Path, key: str, state_dir: Path | None = None) -> Endpoint:
        state = state_dir or directory
        return cls(
            directory=directory,
            socket_path=directory / f"{key}.sock",
            lock_path=state / f"{key}.lock",
            pid_path=state / f"{key}.pid",
        )


class ServiceLock:
    """The exclusive, non-blocking `flock` that makes a service the only one for its
    repository, held for the life of the service process.

    Once acquired, the pid file names this process and its start time (so that a reused pid
    is not taken for the holder). The lock's descriptor is close-on-exec, so that agents the
    service starts never inherit it. As a context manager, entering raises ServiceError when
    another process holds the lock."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock and record this process in the pid file; False when another process
        holds it. Two processes racing here leave exactly one holder."""
        if self._fd is not None:
            return True
        fd = _open_lock_file(self.endpoint.lock_path)
        deadline = time.monotonic() + _ACQUIRE_GRACE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # A held lock with no live holder on record is a `holder()` probe, a
                # service between locking and writing its pid file, or a killed service
                # whose other threads are still exiting: all last moments.
                if _recorded_holder(self.endpoint) is not None or time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(_ACQUIRE_RETRY)
            except OSError as exc:
                os.close(fd)
                path = self.endpoint.lock_path
                raise ServiceError(f"cannot lock {path}: {exc.strerror or exc}") from None
        self._fd = fd
        try:
            _write_pid_file(self.endpoint.pid_path)
        except (OSError, psutil.Error) as exc:
            self.release()
            path = self.endpoint.pid_path
            raise ServiceError(f"cannot write {path}: {exc}") from None
        return True

    def release(self) -> None:
        """Remove the pid file and let the lock go; nothing happens when it is not held."""
        if self._fd is None:
            return
        # Removed while the lock is still held, so that the file never names a past holder
        # at a moment when the lock looks held.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.endpoint.pid_path)
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> Self:
        if not self.acquire():
            pid = holder(self.endpoint)
            who = f" (pid {pid})" if pid is not None else ""
            raise ServiceError(f"a looptui service already runs for this repository{who}")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def holder(endpoint: Endpoint) -> int | None:
    """The pid of the live process holding the endpoint's lock, or None. A pid file without
    a held lock is stale (its writer died) and is ignored."""
    with _probe_lock(endpoint.lock_path, create=False) as free:
        if free:
            return None
    return _recorded_holder(endpoint)


def check_socket(path: Path) -> None:
    """Raise ServiceError when `path` exists and is not a socket, or is another user's.
    A missing path is fine."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ServiceError(f"cannot use {path}: {exc.strerror or exc}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise ServiceError(f"refusing {path}: it is not a socket (owner uid {info.st_uid})")
    me = os.getuid()
    if info.st_uid != me:
        raise ServiceError(f"refusing {path}: it is owned by uid {info.st_uid}, not you (uid {me})")


def clean_stale_socket(endpoint: Endpoint) -> bool:
    """Remove the socket file a dead service left behind; True when one was removed.

    It is removed only when nobody holds the lock and connecting to it is refused. The lock
    is held here while looking, so a service starting meanwhile cannot bind a fresh socket
    that would then be removed; a socket whose lock is held is never touched."""
    path = endpoint.socket_path
    if not os.path.lexists(path):
        return False
    check_socket(path)
    with _probe_lock(endpoint.lock_path, create=True) as free:
        if not free or _accepts_connections(path):
            return False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return True


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket (`SO_PEERCRED`),
    as the kernel recorded it at connect time."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    _pid, uid, _gid = _PEERCRED.unpack(raw)
    return int(uid)


def peer_allowed(sock: socket.socket) -> bool:
    """Whether the peer runs as this user; a peer whose credentials cannot be read is not."""
    try:
        return peer_uid(sock) == os.getuid()
    except OSError:
        return False


def bind_listener(endpoint: Endpoint) -> socket.socket:
    """A listening, non-blocking Unix socket at the endpoint's socket path, its file mode
    0o600, ready for `asyncio.start_unix_server(sock=...)`.

    Call it only while holding the endpoint's ServiceLock: it replaces any socket file left
    there (after `check_socket` has made sure it is ours and a socket)."""
    path = endpoint.socket_path
    check_socket(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        # The umask is process-wide: it is narrowed only for the bind itself.
        previous = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(previous)
        listener.listen(_BACKLOG)
        listener.setblocking(False)
    except OSError as exc:
        listener.close()
        raise ServiceError(f"cannot listen on {path}: {exc.strerror or exc}") from None
    return listener


def _open_lock_file(path: Path) -> int:
    """The lock file's descriptor, the file created 0o600 if need be."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise ServiceError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ServiceError(f"refusing {path}: it is not a regular file")
        if stat.S_IMODE(info.st_mode) != 0o600:
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def _probe_lock(path: Path, *, create: bool) -> Iterator[bool]:
    """Try the lock on a descriptor of our own; yields whether it was free, holding it for
    the block when it was. A missing lock file (with `create` false) counts as free."""
    if create:
        fd = _open_lock_file(path)
    else:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            yield True
            return
        except OSError as exc:
            raise ServiceError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        try:
            # flock locks belong to the open file description, so this conflicts even with
            # a lock this same process holds through another descriptor.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            free = True
        except BlockingIOError:
            free = False
        yield free  # closing the descriptor below is what lets the lock go
    finally:
        os.close(fd)


def _write_pid_file(path: Path) -> None:
    """Record this process (pid and start time) in `path`, atomically."""
    pid = os.getpid()
    record = json.dumps({"pid": pid, "started": psutil.Process(pid).create_time()})
    temporary = path.with_name(f".{path.name}.{pid}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600)
    try:
        os.write(fd, record.encode() + b"\n")
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _recorded_holder(endpoint: Endpoint) -> int | None:
    """The pid in the pid file when that process is alive and is the one that wrote it (same
    start time); None otherwise. It says nothing about the lock: callers check that.

    A zombie is not alive, even while it still holds the lock: a process's descriptors (its
    lock, its listening socket) are shared by its threads and close only when the last one
    has exited, and a killed service's main thread is a zombie while its other threads are
    still tearing the process down. What it holds goes with them, in moments."""
    try:
        record = json.loads(endpoint.pid_path.read_text())
        pid, started = record["pid"], record["started"]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(pid, int) or not isinstance(started, int | float) or pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        actual = process.create_time()
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return pid if abs(actual - started) <= _START_TOLERANCE else None


def _accepts_connections(path: Path) -> bool:
    """Whether something listens at `path`. Only a refused connection or a missing file
    count as no; anything else (a full backlog, a timeout) leaves the socket alone."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True
    finally:
        probe.close()
    return True
