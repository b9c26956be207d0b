"""Faults while writing results: signals (SIGINT, SIGTERM, SIGKILL), a full disk (ENOSPC), I/O errors (EIO).

The rule (issue 9): one line naming the file and the cause, exit 2 (130 for SIGINT, 143 for SIGTERM),
nothing half-written (an existing output folder stays exactly as it was, no staging folder left behind),
and a killed run's staging folder is removed by the next run. Add a case by adding a row to a
parametrize list below.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pkcsf.cli import main
from pkcsf.core import output as O
from pkcsf.core.errors import OutputError, ScenarioError

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and renames")

SCENARIO = """\
drug = "methotrexate"
[population]
subjects = 2
[readouts]
groups = ["plasma", "lumbar"]
[[arms]]
name = "lumbar"
regimen = "12 mg lumbar once"
[outputs]
figures = false
"""


def listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def err_lines(err: str) -> list[str]:
    """stderr lines, without the one-time 'compiling ... once for this machine' notice."""
    return [ln for ln in err.strip().splitlines() if "once for this machine" not in ln]


def staging_left(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if O.TAG in p.name]


def scenario(tmp_path) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO)
    return p


def previous_output(tmp_path) -> Path:
    """An output folder a previous pkcsf run wrote, with one file the user added."""
    out = tmp_path / "out"
    with O.Output(out) as st:
        st.path("summary.csv").write_text("previous run\n")
        st.path("figures/a.png").write_bytes(b"png")
        st.commit()
    (out / "notes.txt").write_text("mine")
    return out


# ------------------------------------------------------------------ ENOSPC / EIO while writing
def _fail_on_third_table(code):
    import pkcsf.cli.commands.run as R

    real, calls = R._write_table, []

    def write_table(df, stage, stem, fmt):
        calls.append(stem)
        if len(calls) == 3:
            with open(stage.path(f"{stem}.{fmt}"), "w") as f:
                f.write("half a ta")                       # a file half-written when the disk fills up
            raise OSError(code, os.strerror(code))         # like write(): no filename on the exception
        return real(df, stage, stem, fmt)

    return write_table


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("existing", [False, True])
def test_run_write_error_is_one_line_and_writes_nothing(capsys, tmp_path, monkeypatch, code, existing):
    import pkcsf.cli.commands.run as R

    out = previous_output(tmp_path) if existing else tmp_path / "out"
    before = listing(out) if existing else None
    monkeypatch.setattr(R, "_write_table", _fail_on_third_table(code))
    rc = main(["run", str(scenario(tmp_path)), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err_lines(err)
    assert len(lines) == 1 and lines[0].startswith("pkcsf: error: --out: got "), err
    assert str(out / "bands.csv") in lines[0], "names the file being written (its final path)"
    assert os.strerror(code) in lines[0] and "nothing was written" in lines[0]
    assert "Traceback" not in err
    assert (listing(out) == before) if existing else not out.exists()
    assert staging_left(tmp_path) == []


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, ["disk is full"]), (errno.EIO, ["Input/output error"]),
                                         (errno.EDQUOT, ["quota"]), (errno.EROFS, ["read-only"]),
                                         (errno.EACCES, ["write to"])])
def test_io_error_messages(code, words):
    e = O.io_error(OSError(code, os.strerror(code)), "--out", "/x/out/summary.csv")
    msg = str(e)
    assert msg.startswith("--out: got '/x/out/summary.csv'; could not be written") and "nothing was written" in msg
    assert all(w in msg for w in words) and "\n" not in msg


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_error_during_the_swap_leaves_the_old_folder(tmp_path, monkeypatch, code):
    out = previous_output(tmp_path)
    before = listing(out)

    def broken(new, old):
        raise OSError(code, os.strerror(code), str(old))

    monkeypatch.setattr(O, "_exchange", broken)
    with pytest.raises(OutputError, match=os.strerror(code)):
        with O.Output(out) as st:
            st.path("summary.csv").write_text("new run\n")
            st.commit()
    assert listing(out) == before
    assert staging_left(tmp_path) == []


def test_oserror_in_the_api_is_an_output_error(tmp_path):
    # the report builder and any other API writer use the same Output: one error naming the file
    with pytest.raises(OutputError) as e:
        with O.Output(tmp_path / "rep", field="out_dir") as st:
            with open(st.path("report.html"), "w"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    msg = str(e.value)
    assert msg.startswith("out_dir: got ") and str(tmp_path / "rep" / "report.html") in msg
    assert "disk is full" in msg and not (tmp_path / "rep").exists() and staging_left(tmp_path) == []


# ------------------------------------------------------------------ replacement rules
def test_replacement_is_whole_and_keeps_user_files(tmp_path):
    out = previous_output(tmp_path)
    inode = (out / "notes.txt").stat().st_ino
    with O.Output(out) as st:
        st.path("summary.csv").write_text("new run\n")
        st.commit()
    assert listing(out) == {"summary.csv": b"new run\n", "notes.txt": b"mine",
                            O.MANIFEST: (out / O.MANIFEST).read_bytes()}, "old pkcsf files gone, user's kept"
    assert (out / "notes.txt").stat().st_ino == inode, "the user's file itself, hard-linked across the swap"
    assert json.loads((out / O.MANIFEST).read_text())["files"] == ["summary.csv"]


@pytest.mark.parametrize("exchange", [True, False])
def test_swap_with_and_without_renameat2(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(O, "_EXCHANGE", None)
    out = previous_output(tmp_path)
    with O.Output(out) as st:
        st.path("a.csv").write_text("x")
        st.commit()
    assert sorted(listing(out)) == sorted([O.MANIFEST, "a.csv", "notes.txt"])
    assert staging_left(tmp_path) == []


@pytest.mark.parametrize("mask, mode", [(0o022, 0o755), (0o077, 0o700), (0o002, 0o775)])
def test_output_folders_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        with O.Output(tmp_path / "a" / "out") as st:
            st.path("x.csv").write_text("1")
            st.commit()
    finally:
        os.umask(old)
    assert (tmp_path / "a" / "out").stat().st_mode & 0o777 == mode


def test_foreign_folder_is_refused(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    (d / "data.csv").write_text("x")
    with pytest.raises(ScenarioError, match="did not write"):
        O.Output(d)
    assert staging_left(tmp_path) == []


def test_folder_of_an_earlier_pkcsf_run_without_manifest_is_replaced(tmp_path):
    # written before .pkcsf-output.json existed: run.json lists pkcsf's files; the rest are the user's
    out = tmp_path / "old"
    (out / "figures").mkdir(parents=True)
    (out / "summary.csv").write_text("old")
    (out / "figures" / "bands.png").write_bytes(b"png")
    (out / "notes.txt").write_text("mine")
    (out / "run.json").write_text(json.dumps({"pkcsf_version": "0.1.0", "files": ["summary.csv", "run.json"]}))
    with O.Output(out) as st:
        st.path("summary.csv").write_text("new")
        st.commit()
    assert sorted(listing(out)) == sorted([O.MANIFEST, "summary.csv", "notes.txt"])


# ------------------------------------------------------------------ stale staging folders
def test_stale_staging_folders_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = O._host()
    names = {
        f".out{O.TAG}{dead.pid}-{host}-abc": True,              # a killed run on this host
        f".out{O.TAG}{os.getpid()}-{host}-abc": False,          # a live run (this one)
        f".out{O.TAG}{dead.pid}-00000000-abc": False,           # another host: only by age
        f".old{O.TAG}xyz": False,                               # old naming, recent
        f".older{O.TAG}xyz": True,                              # old naming, two days old
    }
    for n in names:
        (tmp_path / n).mkdir()
        (tmp_path / n / "f").write_text("x")
    t = time.time() - 2 * 86400
    os.utime(tmp_path / f".older{O.TAG}xyz", (t, t))
    gone = O.remove_stale(tmp_path)
    assert sorted(gone) == sorted(n for n, stale in names.items() if stale)


# ------------------------------------------------------------------ signals (real processes)
SLOW = textwrap.dedent("""\
    import pathlib, sys, time
    import pkcsf.clinical.scenario as S
    from pkcsf.cli import main

    def slow(*a, **k):                       # the run is under way: the staging folder exists
        pathlib.Path(sys.argv[1]).write_text("ready")
        time.sleep(120)

    S.run = slow
    sys.exit(main(sys.argv[2:]))
""")


def _start_slow(tmp_path, out):
    ready = tmp_path / "ready"
    p = subprocess.Popen([sys.executable, "-c", SLOW, str(ready), "run", str(scenario(tmp_path)), "--out", str(out),
                          "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(1200):
        if ready.exists() or p.poll() is not None:
            break
        time.sleep(0.05)
    assert ready.exists(), p.communicate()
    assert len(staging_left(tmp_path)) == 1
    return p


@pytest.mark.parametrize("sig, code, word, existing", [(signal.SIGINT, 130, "interrupted", True),
                                                       (signal.SIGTERM, 143, "terminated", False)],
                         ids=["SIGINT-replacing", "SIGTERM-new-folder"])
def test_signal_during_a_run_removes_staging(tmp_path, sig, code, word, existing):
    out = previous_output(tmp_path) if existing else tmp_path / "out"
    before = listing(out) if existing else None
    p = _start_slow(tmp_path, out)
    p.send_signal(sig)
    stdout, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert err_lines(err) == [f"pkcsf: {word} (nothing was written)"], err
    assert staging_left(tmp_path) == []
    assert (listing(out) == before) if existing else not out.exists()


def test_after_sigkill_the_next_run_cleans_up(tmp_path, capsys):
    out = previous_output(tmp_path)
    before = listing(out)
    p = _start_slow(tmp_path, out)
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    assert len(staging_left(tmp_path)) == 1, "SIGKILL cannot be handled: the staging folder stays"
    assert listing(out) == before, "but the output folder is untouched"
    assert main(["run", str(scenario(tmp_path)), "--out", str(tmp_path / "next"), "--quiet"]) == 0
    assert staging_left(tmp_path) == []


@pytest.mark.parametrize("sig, code, word", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])
def test_signal_during_start_up_prints_one_line(tmp_path, sig, code, word):
    p = subprocess.Popen([sys.executable, "-m", "pkcsf.cli", "drugs"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    maps = Path(f"/proc/{p.pid}/maps")
    if not maps.exists():
        p.kill()
        pytest.skip("needs /proc to see that the process is importing")
    for _ in range(2000):          # numpy loaded: pkcsf's imports are under way (the handlers come first)
        try:
            if "numpy" in maps.read_text():
                break
        except OSError:
            break
        time.sleep(0.002)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    if p.returncode == 0:
        pytest.skip("the command finished before the signal arrived")
    assert p.returncode == code, err
    assert "Traceback" not in err and len(err_lines(err)) == 1, err
    assert word in err
