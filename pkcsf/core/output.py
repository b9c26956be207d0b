"""Output folders written all at once: stage a complete folder, then swap it in by rename.

Used by the command line and by :func:`pkcsf.report.build_report` (one implementation)::

    with Output("results/mtx", field="--out") as out:
        df.to_csv(out.path("summary.csv"))
        out.commit()                        # the folder appears (or is replaced) in one rename

Rules
-----
* Everything is written into a staging folder ``.NAME.pkcsf-tmp-PID-HOST-XXXX`` next to the target.
  :meth:`Output.commit` renames it into place. An existing target is *exchanged* with the staging
  folder in one ``renameat2(RENAME_EXCHANGE)`` call where the system has it (Linux), else by two
  renames (old aside, new in); the old folder is then removed. Readers see the old folder or the
  new one, never a mix.
* pkcsf marks its folders with a small manifest (``.pkcsf-output.json``, the files it wrote). An
  existing folder is replaced only if it is empty or carries that manifest; a non-empty folder
  pkcsf did not create is refused (a typo in ``--out`` must not swallow someone's folder).
  Files a user added to a pkcsf folder (not in its manifest) are kept: they are hard-linked into
  the staging folder before the swap, so they survive atomically; if they cannot be linked the
  run is refused and nothing changes.
* Folders get the user's umask (not the 0700 of ``mkdtemp``).
* Any ``OSError`` while staging (disk full, I/O error, permissions) becomes an
  :class:`~pkcsf.core.errors.OutputError` naming the file and the cause; the staging folder is
  removed, the target is left as it was.
* Staging folders left by earlier runs (killed: their process is gone, or older than a day) are
  removed when the next output is staged in the same folder.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import zlib
from pathlib import Path

from pkcsf.core.errors import OutputError, PkcsfError, ScenarioError

__all__ = ["Output", "MANIFEST", "remove_stale", "io_error", "commits"]

MANIFEST = ".pkcsf-output.json"
TAG = ".pkcsf-tmp-"
STALE_AFTER_S = 24 * 3600.0
_STAGE_RE = re.compile(r"\.pkcsf-tmp-(\d+)-([0-9a-f]{8})-")
_COMMITS = [0]


def commits() -> int:
    """How many output folders this process has committed (the CLI says 'nothing was written' if none).

    Returns
    -------
    int
        The count.
    """
    return _COMMITS[0]


def _host() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()) & 0xFFFFFFFF:08x}"


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:            # Linux: read without changing it (thread-safe)
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    m = os.umask(0o022)
    os.umask(m)
    return m


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale(folder: str | Path, *, now: float | None = None) -> list[str]:
    """Remove staging folders of earlier runs in ``folder``; return their names.

    Stale: written on this host by a process that no longer exists, or older than a day.

    Parameters
    ----------
    folder : str or Path
        The folder whose staging folders are checked.
    now : float, optional
        The current time (s since the epoch), for tests.

    Returns
    -------
    list of str
        The names removed.
    """
    folder = Path(folder)
    now = time.time() if now is None else now
    gone = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return gone
    host = _host()
    for e in entries:
        if TAG not in e.name or not e.name.startswith("."):
            continue
        try:
            if not e.is_dir(follow_symlinks=False):
                continue
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        m = _STAGE_RE.search(e.name)
        dead = m is not None and m.group(2) == host and not _alive(int(m.group(1)))
        if dead or age > STALE_AFTER_S:
            shutil.rmtree(e.path, ignore_errors=True)
            gone.append(e.name)
    return gone


def _read_manifest(folder: Path) -> dict | None:
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return _legacy_manifest(folder)
    return data if isinstance(data, dict) and data.get("written_by") == "pkcsf" else None


def _legacy_manifest(folder: Path) -> dict | None:
    """Folders written before the manifest existed: ``pkcsf run``'s run.json and ``pkcsf escalate``'s
    escalation.json list the files they wrote.
    """
    for name in ("run.json", "escalation.json"):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        files = data.get("files") if isinstance(data, dict) else None
        ours = isinstance(data, dict) and ("pkcsf_version" in data or str(data.get("command", "")).startswith("pkcsf "))
        if ours and isinstance(files, list) and all(isinstance(f, str) for f in files):
            figs = [f"figures/{p.name}" for p in (folder / "figures").glob("*.png")]
            return {"written_by": "pkcsf", "files": files + [name] + figs}
    return None


def _files(folder: Path) -> list[str]:
    out = []
    for root, dirs, files in os.walk(folder):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), folder).replace(os.sep, "/")
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def io_error(exc: OSError, field: str, where: str | Path | None = None, *,
             error: type[OutputError] = OutputError) -> OutputError:
    """One-line error for an OSError: the file, the cause, what to do.

    Parameters
    ----------
    exc : OSError
        The error raised by the operating system.
    field : str
        The option or key that named the output (``"--out"``).
    where : str or Path, optional
        The file or folder concerned (default: the error's file name).
    error : type of PkcsfError, optional
        The error class returned.

    Returns
    -------
    OutputError
        The error to raise (``raise io_error(exc, "--out") from None``).
    """
    path = exc.filename if exc.filename is not None else where
    cause = exc.strerror or str(exc) or type(exc).__name__
    fix = {errno.ENOSPC: "the disk is full: free space or choose another folder",
           errno.EDQUOT: "the disk quota is exceeded: free space or choose another folder",
           errno.EACCES: "choose a folder you can write to", errno.EPERM: "choose a folder you can write to",
           errno.EROFS: "the file system is read-only: choose another folder"}.get(exc.errno)
    return error(field, str(path), f"could not be written: {cause} [errno {exc.errno}]",
                 (fix + "; " if fix else "") + "nothing was written")


# ------------------------------------------------------------------ the atomic swap
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        f = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return None
    f.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    f.restype = ctypes.c_int
    return f


_EXCHANGE = _renameat2()


def _exchange(new: Path, old: Path) -> Path:
    """Put ``new`` at ``old``'s path; return where the previous ``old`` now is (to be removed)."""
    if _EXCHANGE is not None:
        if _EXCHANGE(_AT_FDCWD, os.fsencode(str(new)), _AT_FDCWD, os.fsencode(str(old)), _RENAME_EXCHANGE) == 0:
            return new                                          # the old folder is now at the staging path
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(old))
    aside = Path(tempfile.mkdtemp(prefix=new.name.split(TAG)[0] + TAG + f"{os.getpid()}-{_host()}-old-",
                                  dir=new.parent))
    aside.rmdir()
    os.rename(old, aside)
    try:
        os.rename(new, old)
    except BaseException:
        os.rename(aside, old)
        raise
    return aside


@contextlib.contextmanager
def _signals_deferred():
    """SIGINT/SIGTERM wait until the swap is done (delivered right after)."""
    block = hasattr(signal, "pthread_sigmask") and threading.current_thread() is threading.main_thread()
    if block:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        if block:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


class Output:
    """A staging folder for ``target``; :meth:`commit` swaps it into place in one rename.

    Parameters
    ----------
    target : str or Path
        The output folder (created if needed; an existing one must be empty or written by pkcsf).
    field : str
        Named in errors (``"--out"``, ``"outputs.folder"``, ``"out_dir"``).
    error : type
        The :class:`~pkcsf.core.errors.PkcsfError` subclass raised for a bad target.

    Notes
    -----
    Checked at creation: the target is not a file, its nearest existing ancestor is a writable
    folder, an existing target is empty or pkcsf's. Nothing is created at ``target`` before
    :meth:`commit`; on any error inside ``with`` the staging folder is removed.
    """

    def __init__(self, target: str | os.PathLike, field: str = "--out",
                 error: type[PkcsfError] = ScenarioError) -> None:
        self.field, self.error, self.given = field, error, str(target)
        if not str(target).strip():
            raise error(field, str(target), "an empty path", "name an output folder, e.g. results/run1")
        t = Path(os.path.abspath(os.path.expanduser(str(target))))
        self.target = t
        if t.exists() and not t.is_dir():
            raise error(field, str(target), "exists and is a file, not a folder", "choose another output folder")
        anc = t.parent
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir():
            raise error(field, str(target), f"cannot be created: {anc} is a file",
                        "choose an output folder whose parents are folders")
        if not os.access(anc, os.W_OK | os.X_OK):
            raise error(field, str(target), f"cannot be written: no write permission in {anc}",
                        "choose a folder you can write to")
        self._check_replaceable()
        remove_stale(anc)
        name = (t.name or "out")[:80]
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{name}{TAG}{os.getpid()}-{_host()}-", dir=anc))
            os.chmod(self.tmp, 0o777 & ~_umask())
        except OSError as e:
            raise error(field, str(target), f"cannot be written: {e.strerror or e}",
                        "choose a folder you can write to") from None
        self.files: list[str] = []
        self._last: Path | None = None
        self.committed = False

    # ---------------------------------------------------------------- checks
    def _check_replaceable(self):
        t = self.target
        if not t.is_dir():
            return None
        manifest = _read_manifest(t)
        if manifest is None:
            try:
                empty = next(os.scandir(t), None) is None
            except OSError as e:
                raise io_error(e, self.field, t, error=self.error) from None
            if not empty:
                raise self.error(self.field, self.given,
                                 f"is a folder with files that pkcsf did not write (no {MANIFEST} in it); "
                                 "pkcsf replaces only its own output folders",
                                 "choose a new or empty folder, or move the files away")
        return manifest

    # ---------------------------------------------------------------- writing
    def path(self, name: str) -> Path:
        """Where to write ``name`` (a relative path; sub-folders are created).

        Parameters
        ----------
        name : str
            Path relative to the output folder, such as ``"figures/profile.png"``.

        Returns
        -------
        Path
            The staged path to write to (inside the staging folder until :meth:`commit`).
        """
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(name)
        self._last = p
        return p

    def final(self, p: str | os.PathLike) -> Path:
        """The path a staged file will have once committed.

        Parameters
        ----------
        p : str or Path
            A staged path (from :meth:`path`); any other path is returned unchanged.

        Returns
        -------
        Path
            The same file under the target folder.
        """
        p = Path(p)
        try:
            return self.target / p.relative_to(self.tmp)
        except ValueError:
            return p

    def commit(self) -> Path:
        """Swap the staging folder into place (one rename, or an exchange with an older pkcsf folder).

        Returns
        -------
        Path
            The target folder.
        """
        t = self.target
        files = _files(self.tmp)
        (self.tmp / MANIFEST).write_text(json.dumps({"written_by": "pkcsf", "files": files}, indent=1) + "\n",
                                         encoding="utf-8")
        with _signals_deferred():
            if not t.exists():
                t.parent.mkdir(parents=True, exist_ok=True)
                os.rename(self.tmp, t)      # fails (ENOTEMPTY) if someone created a non-empty t meanwhile
            else:
                old = self._check_replaceable()
                self._carry_user_files(old)
                leftover = _exchange(self.tmp, t)
                shutil.rmtree(leftover, ignore_errors=True)
            self.committed = True
            _COMMITS[0] += 1
        return t

    def _carry_user_files(self, manifest):
        """Hard-link files a user added to a pkcsf folder into the staging folder (kept across the swap)."""
        if not manifest:
            return
        ours = set(manifest.get("files", [])) | {MANIFEST}
        for rel in _files(self.target):
            if rel in ours:
                continue
            src, dst = self.target / rel, self.tmp / rel
            if dst.exists() or dst.is_symlink():
                continue                        # pkcsf writes a file of that name now: replaced
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                if src.is_symlink():
                    os.symlink(os.readlink(src), dst)
                else:
                    os.link(src, dst, follow_symlinks=False)
            except OSError as e:
                raise self.error(self.field, self.given,
                                 f"your file {rel} in this folder cannot be kept atomically ({e.strerror or e})",
                                 "move it out of the folder, or choose another folder") from None

    def discard(self) -> None:
        """Remove the staging folder; the target is left as it was."""
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def fail(self, exc: BaseException) -> None:
        """On an error: remove the staging folder; an OSError is raised again as one-line OutputError.

        Parameters
        ----------
        exc : BaseException
            The error that interrupted the writing.

        Raises
        ------
        OutputError
            When ``exc`` is an ``OSError`` (disk full, permissions...), naming the file it concerned.
        """
        self.discard()
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
            if exc.filename is not None:
                exc.filename = str(self.final(exc.filename))
            raise io_error(exc, self.field, self.final(self._last) if self._last else self.target) from exc

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.fail(exc)
        return False
