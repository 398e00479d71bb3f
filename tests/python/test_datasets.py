"""load/open/stat/ls/rm from Python against the real OS: sections in /dev/shm, a second
process (the tool, a child Python), numpy views of the mapping, and the errors."""
import gc
import json
import mmap
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import bulkmap
from conftest import run_tool, xxhsum

LOAD_KEYS = {"name", "bytes", "xxh3", "state", "page_size", "large_pages", "seconds",
             "source_stable", "source_unstable_why",
             "bytes_per_second", "writer_pid", "created", "format", "layout",
             "source_cached_bytes"}
STAT_KEYS = {"name", "bytes", "xxh3", "state", "page_size", "large_pages", "writer_pid", "source_stable",
             "created", "source", "path", "section_bytes", "format", "layout"}


def test_round_trip(pattern_file, names, tool):
    p, data = pattern_file(3 * 1024 * 1024 + 17)
    name = names("rt")
    r = bulkmap.load(p, name, large_pages="off")
    assert set(r) == LOAD_KEYS
    assert r["name"] == name and r["bytes"] == len(data) and r["state"] == "ready"
    assert r["xxh3"] == xxhsum(str(p))
    assert r["writer_pid"] == os.getpid()
    assert r["large_pages"]["requested"] == "off" and r["large_pages"]["obtained"] is False

    s = bulkmap.stat(name)
    assert set(s) == STAT_KEYS
    assert s["source"] == p.name and s["path"] == "/dev/shm/" + name
    theirs = json.loads(run_tool(tool, "stat", name, "--json").stdout)
    assert s == theirs

    listed = [x for x in bulkmap.ls()["sections"] if x["name"] == name]
    assert len(listed) == 1 and listed[0]["state"] == "ready" and listed[0]["mode"] == "0600"
    theirs = [x for x in json.loads(run_tool(tool, "ls", "--json").stdout)["sections"]
              if x["name"] == name]
    assert listed == theirs

    with bulkmap.open(name) as ds:
        assert len(ds) == ds.size == len(data) and ds.name == name
        assert bytes(memoryview(ds)) == data
        assert ds.info["xxh3"] == r["xxh3"]
        ds.verify()
    assert ds.closed
    # A program that knows nothing of bulkmap reads the same bytes (payload at offset 0).
    with open("/dev/shm/" + name, "rb") as f:
        assert f.read(len(data)) == data

    bulkmap.rm(name)
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.stat(name)
    assert e.value.code == "ENOENT"
    assert not os.path.exists("/dev/shm/" + name)


def test_load_refuses_an_existing_name_and_bad_arguments(pattern_file, names):
    p, _ = pattern_file(4096)
    name = names("dup")
    bulkmap.load(p, name, large_pages="off", mode=0o640)
    assert oct(os.stat("/dev/shm/" + name).st_mode & 0o777) == "0o640"
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.load(p, name)
    assert e.value.code == "EEXIST"
    assert bulkmap.stat(name)["state"] == "ready"  # the first one is untouched
    with pytest.raises(ValueError):
        bulkmap.load(p, names(), large_pages="maybe")
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.load(p, "no/slash")
    assert e.value.code == "ENAME"
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.load(str(p) + ".missing", names())
    assert e.value.code == "ENOENT"


def test_empty_file(tmp_path, names):
    p = tmp_path / "empty"
    p.write_bytes(b"")
    name = names("empty")
    r = bulkmap.load(p, name, large_pages="off")
    assert r["bytes"] == 0 and r["xxh3"] == xxhsum(b"")
    with bulkmap.open(name) as ds:
        assert len(ds) == 0 and bytes(memoryview(ds)) == b""
        assert np.frombuffer(ds, np.uint8).size == 0


def test_numpy_view_is_zero_copy(pattern_file, names):
    p, data = pattern_file(8 * 1024 * 1024)
    name = names("np")
    bulkmap.load(p, name, large_pages="off")
    ds = bulkmap.open(name)
    a = np.frombuffer(ds, dtype=np.uint32)
    # The array's memory is the section's mapping, not a copy of it.
    assert a.__array_interface__["data"][0] == ds.address
    assert a.base is ds or getattr(a.base, "obj", None) is ds
    assert not a.flags.writeable and not a.flags.owndata
    assert a.tobytes() == data
    with pytest.raises(ValueError):
        a[0] = 1
    with pytest.raises(TypeError):
        memoryview(ds)[0:1] = b"x"  # a read-only export
    # A write through the section (the owner may) shows in the array at once.
    fd = os.open("/dev/shm/" + name, os.O_RDWR)
    try:
        with mmap.mmap(fd, 4096) as m:
            m[0:4] = b"\x01\x02\x03\x04"
    finally:
        os.close(fd)
    assert a[0] == int.from_bytes(b"\x01\x02\x03\x04", sys.byteorder)
    del a
    ds.close()


def test_close_with_a_live_export(pattern_file, names):
    p, data = pattern_file(1024 * 1024)
    name = names("exp")
    bulkmap.load(p, name, large_pages="off")
    ds = bulkmap.open(name)
    m = memoryview(ds)
    a = np.frombuffer(ds, np.uint8)
    with pytest.raises(BufferError):
        ds.close()
    del m
    with pytest.raises(BufferError):  # the array still holds one
        ds.close()
    assert not ds.closed and a[:5].tobytes() == data[:5]
    del a
    ds.close()
    assert ds.closed
    ds.close()  # twice is fine
    with pytest.raises(BufferError):
        memoryview(ds)
    with pytest.raises(ValueError):
        len(ds)

    # As mmap: leaving a with block while a view lives raises, and unmaps nothing.
    with pytest.raises(BufferError):
        with bulkmap.open(name) as ds2:
            a = np.frombuffer(ds2, np.uint8)
    assert a[-5:].tobytes() == data[-5:]
    # The last reference going away with the array alive: the array keeps the mapping.
    del ds2
    gc.collect()
    assert int(a.sum()) == sum(data)
    del a
    gc.collect()


def test_open_errors(names, tmp_path):
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(names("missing"))
    assert e.value.code == "ENOENT"
    assert str(e.value) == e.value.context + ": no such section"
    for bad in ("", "a/b", "x" * 201, "sp ace"):
        with pytest.raises(bulkmap.Error) as e:
            bulkmap.open(bad)
        assert e.value.code == "ENAME", bad
    # A section that is not a dataset.
    name = names("foreign")
    with open("/dev/shm/" + name, "wb") as f:
        f.write(b"not a dataset" * 1000)
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(name)
    assert e.value.code == "ENOTDATASET"
    assert isinstance(e.value, Exception) and e.value.os_error == 0


def _start_stopped_load(tool, path, name):
    """Starts `bulkmap load` and stops it (SIGSTOP) once the section exists: a dataset in
    `loading` whose writer is alive. None when the load finished first."""
    proc = subprocess.Popen([tool, "load", str(path), "--name", name, "--large-pages", "off",
                             "--no-progress"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not os.path.exists("/dev/shm/bulkmap#" + name) and time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        time.sleep(0.0005)
    os.kill(proc.pid, signal.SIGSTOP)
    # Stopped between making the section and writing its first trailer: let it go on a bit.
    for _ in range(1000):
        try:
            if bulkmap.stat(name)["writer_pid"] != 0:
                break
        except bulkmap.Error:
            pass  # made, not yet sized or not yet a dataset
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.0002)
        os.kill(proc.pid, signal.SIGSTOP)
    if bulkmap.stat(name)["state"] != "loading":
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None
    return proc


def test_not_ready_and_abandoned(tool, tmp_path, names):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(1 << 30)  # sparse: the load reads zeros as fast as it can
    for attempt in range(5):
        name = names("loading")
        proc = _start_stopped_load(tool, big, name)
        if proc is not None:
            break
    else:
        pytest.skip("every load finished before it could be stopped")
    try:
        with pytest.raises(bulkmap.Error) as e:
            bulkmap.open(name)
        assert e.value.code == "EINCOMPLETE"
        assert "still loading" in str(e.value)
        s = bulkmap.stat(name)
        assert s["state"] == "loading" and s["xxh3"] is None and s["writer_pid"] == proc.pid
        with pytest.raises(bulkmap.Error) as e:
            bulkmap.rm(name)
        assert e.value.code == "EBUSY"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(name)
    assert e.value.code == "EABANDONED"
    assert bulkmap.stat(name)["state"] == "abandoned"
    bulkmap.rm(name)


CHILD = r"""
import sys, bulkmap
try:
    bulkmap.load(sys.argv[1], sys.argv[2], large_pages="off")
except KeyboardInterrupt:
    sys.exit(42)
sys.exit(0)
"""


def test_keyboard_interrupt_leaves_nothing(tmp_path, names):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(2 << 30)
    for attempt in range(5):
        name = names("intr")
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(big), name])
        deadline = time.monotonic() + 30
        # The claim (bulkmap#NAME) is there while the load runs; NAME itself only once it is
        # published, too late to interrupt it.
        while not os.path.exists("/dev/shm/bulkmap#" + name) and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.0005)
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=60)
        if rc == 42:
            break
        if rc == 0 or (rc == -signal.SIGINT and os.path.exists("/dev/shm/" + name)):
            # Finished first: the load returned (and, -SIGINT, the signal came while the
            # interpreter shut down, its handler put back to the default). Again.
            bulkmap.rm(name)
            continue
        pytest.fail("child ended with %d" % rc)
    else:
        pytest.skip("every load finished before the interrupt")
    assert not os.path.exists("/dev/shm/" + name)
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.stat(name)
    assert e.value.code == "ENOENT"


def test_source_changed_during_load_is_not_published(pattern_file, names):
    import threading
    p, _ = pattern_file(64 << 20, name="changing.txt")
    for attempt in range(5):
        name = names("chg")
        stop = threading.Event()

        def touch():
            while not stop.is_set():
                os.utime(p)  # a new ctime: the file "changed as we read it"

        t = threading.Thread(target=touch)
        t.start()
        try:
            bulkmap.load(p, name, large_pages="off")
        except bulkmap.Error as e:
            assert e.code == "ECHANGED", e
            break
        finally:
            stop.set()
            t.join()
        bulkmap.rm(name)  # the touches all fell outside the load: again
    else:
        pytest.skip("no touch landed inside a load")
    assert not os.path.exists("/dev/shm/" + name)


def test_large_pages_on_is_had_or_refused_with_a_reason(pattern_file, names):
    p, data = pattern_file(4096)
    name = names("large")
    try:
        r = bulkmap.load(p, name, large_pages="on")
    except bulkmap.Error as e:
        assert e.code == "ENOLARGE", e
        assert "large pages required but not had" in str(e)
        assert not os.path.exists("/dev/shm/" + name)
        return
    assert r["large_pages"]["obtained"] is True and r["large_pages"]["page_size"] > 4096
    with bulkmap.open(name) as ds:
        assert bytes(memoryview(ds)) == data


def test_removed_while_open_stays_readable(pattern_file, names):
    p, data = pattern_file(2 << 20)
    name = names("rmopen")
    bulkmap.load(p, name, large_pages="off")
    with bulkmap.open(name) as ds:
        a = np.frombuffer(ds, np.uint8)
        bulkmap.rm(name)  # the name goes; the memory lives while it is mapped
        assert not os.path.exists("/dev/shm/" + name)
        assert a.tobytes() == data
        ds.verify()
        del a
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(name)
    assert e.value.code == "ENOENT"



def test_close_while_another_thread_verifies(pattern_file, names):
    """verify() and info run without the GIL on the dataset: close() (or leaving a `with`
    block) from another thread meanwhile waits for them and frees nothing under them; new
    calls are refused at once (ValueError: closed). Many rounds with the close landing
    before, during and after a verify (run once by hand under valgrind with
    PYTHONMALLOC=malloc: no invalid read)."""
    import random
    import threading
    rnd = random.Random(5)
    size = int(os.environ.get("BULKMAP_TEST_RACE_BYTES", 16 << 20))
    rounds = int(os.environ.get("BULKMAP_TEST_RACE_ROUNDS", 150))
    p, _ = pattern_file(size)
    name = names("race")
    bulkmap.load(p, name, large_pages="off")
    waited = 0
    for i in range(rounds):
        ds = bulkmap.open(name, verify=False)
        errors, state = [], {"running": False, "done": 0}
        started = threading.Event()

        def work():
            started.set()
            try:
                while True:
                    state["running"] = True
                    ds.verify()
                    if i % 3 == 0:
                        assert ds.info["state"] == "ready"
                    state["running"] = False
                    state["done"] += 1
            except ValueError as e:  # closed: the only way out
                assert "closed" in str(e)
            except BaseException as e:  # noqa: B902 (anything else fails the test)
                errors.append(e)
            state["running"] = False

        t = threading.Thread(target=work)
        t.start()
        started.wait()
        time.sleep(rnd.random() * 0.004)
        running, done = state["running"], state["done"]
        if i % 2:
            ds.close()
        else:
            ds.__exit__(None, None, None)  # what leaving a with block calls
        assert ds.closed
        if running:
            # The verify that was on its way when close came ended before close returned.
            waited += 1
        t.join()
        assert not errors, errors
        with pytest.raises(ValueError):
            ds.verify()
        with pytest.raises(BufferError):
            memoryview(ds)
    # The race was really run: some closes met a verify on its way.
    assert waited > 0


def test_a_with_block_left_while_verify_runs(pattern_file, names):
    import threading
    p, data = pattern_file(64 << 20)
    name = names("racewith")
    bulkmap.load(p, name, large_pages="off")
    result = []
    with bulkmap.open(name, verify=False) as ds:
        t = threading.Thread(target=lambda: result.append(ds.verify()))
        t.start()
        time.sleep(0.002)
        a = np.frombuffer(ds, np.uint8)
        assert a[:10].tobytes() == data[:10]
        del a
    # Leaving the block waited for the verify, which finished on the live mapping.
    assert ds.closed
    t.join()
    assert result == [None]
