"""A dataset's life from Python (docs/design.md section 7), through the real OS: open(wait=) with a
producer that finishes, one that is killed and a deadline, interrupted by SIGINT; replace
while readers hold the old; rm(abandoned=True) beside a live writer (in a private mount
namespace with its own /dev/shm, so nobody else's datasets are touched), against the tool's
rm --abandoned --json; ls's maps; remove_on_exit with SIGKILL; bulkmap.dask.load on a
LocalCluster of 2 workers. Producers are the C tool (`load`), stopped and resumed with
SIGSTOP/SIGCONT so that each state is held as long as the test needs it."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import bulkmap
from conftest import xxhsum

HERE = os.path.dirname(os.path.abspath(__file__))
BIG = 512 << 20  # a sparse source: its load takes long enough to be caught `loading`


def proc_state(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def wait_stopped(p):
    end = time.monotonic() + 10
    while proc_state(p.pid) not in ("T", "t"):
        assert p.poll() is None, "the producer ended: %r" % (p.communicate(),)
        assert time.monotonic() < end, "the producer did not stop"
        time.sleep(0.001)


def spawn_stopped(tool, path, name, *extra):
    """`tool load PATH --name NAME` that stops itself before it execs: nothing made yet."""
    p = subprocess.Popen(["sh", "-c", 'kill -STOP $$; exec "$0" "$@"', tool, "load", str(path),
                          "--name", name, "--large-pages", "off", "--no-progress", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_stopped(p)
    return p


def catch_loading(tool, path, name):
    """A load of PATH stopped (SIGSTOP) while NAME is `loading` under it: a live writer."""
    p = spawn_stopped(tool, path, name)
    shm = "/dev/shm/bulkmap#" + name  # the claim: the bytes have no name while loading
    os.kill(p.pid, signal.SIGCONT)
    while not os.path.exists(shm):
        assert p.poll() is None, "the load ended: %r" % (p.communicate(),)
    os.kill(p.pid, signal.SIGSTOP)
    wait_stopped(p)
    # The creator's object may not carry its trailer yet (no permission bits, or read as
    # `loading` with writer pid 0 and 0 bytes): let it run on a little.
    for _ in range(1000):
        try:
            st = bulkmap.stat(name)
            state = st["state"]
        except bulkmap.Error:
            state = st = None
        if state == "loading" and st["writer_pid"] == p.pid and st["bytes"] > 0:
            return p
        if state == "ready":
            os.kill(p.pid, signal.SIGCONT)
            p.wait()
            pytest.skip("the load finished before it could be stopped while loading")
        os.kill(p.pid, signal.SIGCONT)
        time.sleep(0.0005)
        os.kill(p.pid, signal.SIGSTOP)
        wait_stopped(p)
    pytest.fail("%s never read as loading" % name)


def sparse(tmp_path, size=BIG, name="big.bin", head=b"head of the sparse source\n" * 100):
    p = tmp_path / name
    with open(p, "wb") as f:
        f.write(head)
        f.truncate(size)
    return p, head


@pytest.fixture
def procs():
    """Producers started by a test; killed after (SIGKILL ends a stopped one too)."""
    made = []
    yield made
    for p in made:
        if p.poll() is None:
            p.kill()
        p.wait()


# ---- open(wait=)

def test_wait_for_a_name_made_later(tool, names, procs, pattern_file):
    path, data = pattern_file(3 << 20)
    n = names("later")
    procs.append(p := spawn_stopped(tool, path, n))
    threading.Timer(0.5, os.kill, (p.pid, signal.SIGCONT)).start()
    t0 = time.monotonic()
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(n)
    assert e.value.code == "ENOENT"
    with bulkmap.open(n, wait=30) as ds:
        waited = time.monotonic() - t0
        assert bytes(memoryview(ds)) == data
        assert ds.info["state"] == "ready"
    assert 0.4 <= waited < 30
    assert p.wait(timeout=30) == 0


def test_wait_while_loading_then_ready(tool, names, procs, tmp_path):
    path, head = sparse(tmp_path)
    n = names("loading")
    procs.append(p := catch_loading(tool, path, n))
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(n)  # no wait: refused at once, as before
    assert e.value.code == "EINCOMPLETE"
    threading.Timer(0.5, os.kill, (p.pid, signal.SIGCONT)).start()
    t0 = time.monotonic()
    with bulkmap.open(n, wait=60, verify=False) as ds:
        assert time.monotonic() - t0 >= 0.4
        assert ds.size == BIG
        assert bytes(memoryview(ds)[:len(head)]) == head
        assert ds.info["state"] == "ready"
    assert p.wait(timeout=60) == 0


def test_wait_ends_at_once_when_the_writer_is_killed(tool, names, procs, tmp_path):
    path, _ = sparse(tmp_path)
    n = names("killed")
    procs.append(p := catch_loading(tool, path, n))
    out = {}

    def waiter():
        try:
            bulkmap.open(n, wait=60, verify=False)
            out["ok"] = True
        except bulkmap.Error as e:
            out["error"] = e
        out["t"] = time.monotonic()

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    assert t.is_alive()  # waiting on a live writer
    killed = time.monotonic()
    p.kill()
    p.wait()
    t.join(30)
    assert not t.is_alive()
    assert "error" in out, "the wait gave a dataset its writer never finished"
    assert out["error"].code == "EABANDONED"
    assert "abandoned" in str(out["error"])
    # inotify sees the dead writer's last close; the library re-checks at most every 2 s.
    assert out["t"] - killed < 3
    # Already abandoned: a new wait ends at once.
    t0 = time.monotonic()
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(n, wait=60)
    assert e.value.code == "EABANDONED"
    assert time.monotonic() - t0 < 1


def test_wait_deadline(tool, names, procs, tmp_path):
    path, _ = sparse(tmp_path)
    n = names("deadline")
    procs.append(p := catch_loading(tool, path, n))
    t0 = time.monotonic()
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(n, wait=1)
    took = time.monotonic() - t0
    assert e.value.code == "ETIMEDOUT"
    assert "timed out" in str(e.value)
    assert "still loading (writer pid %d)" % p.pid in str(e.value)
    assert 0.95 <= took < 3
    # A name that never appears.
    t0 = time.monotonic()
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(names("never"), wait=0.3)
    assert e.value.code == "ETIMEDOUT"
    assert "timed out" in str(e.value) and "does not exist" in str(e.value)
    assert 0.28 <= time.monotonic() - t0 < 2
    # wait=0: one look.
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open(n, wait=0)
    assert e.value.code == "ETIMEDOUT"


def test_wait_arguments(names):
    with pytest.raises(ValueError):
        bulkmap.open(names(), wait=-1)
    with pytest.raises(ValueError):
        bulkmap.open(names(), wait=float("nan"))
    with pytest.raises(TypeError):
        bulkmap.open(names(), wait="5")
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.open("bad/name", wait=1)
    assert e.value.code == "ENAME"


def test_wait_releases_the_gil(names):
    n = names("gil")
    spins = [0]
    done = threading.Event()

    def waiter():
        try:
            bulkmap.open(n, wait=1)
        except bulkmap.Error:
            pass
        done.set()

    threading.Thread(target=waiter).start()
    while not done.is_set():
        spins[0] += 1
    assert spins[0] > 10000


def test_wait_is_interrupted_by_sigint(names):
    n = names("sigint")
    p = subprocess.Popen([sys.executable, "-c",
                          "import bulkmap, sys\nprint('waiting', flush=True)\n"
                          "bulkmap.open(sys.argv[1], wait=60)\n", n],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "waiting"
    time.sleep(0.5)  # inside the wait
    t0 = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=10)
    assert time.monotonic() - t0 < 2
    assert p.returncode != 0
    assert "KeyboardInterrupt" in err


# ---- replace

def test_replace_under_a_reader(names, pattern_file):
    p1, d1 = pattern_file(1 << 20, name="one.txt", seed=b"one")
    p2, d2 = pattern_file((1 << 20) + 12345, name="two.txt", seed=b"two")
    n = names("replace")
    bulkmap.load(p1, n)
    with pytest.raises(bulkmap.Error) as e:
        bulkmap.load(p2, n)
    assert e.value.code == "EEXIST" and "a load with replace replaces it" in str(e.value)
    old = bulkmap.open(n)
    mv = memoryview(old)
    r = bulkmap.load(p2, n, replace=True)
    assert r["state"] == "ready" and r["bytes"] == len(d2) and r["xxh3"] == xxhsum(d2)
    # The old reader keeps the old bytes, unchanged; new opens see the new.
    assert bytes(mv) == d1 and old.info["xxh3"] == xxhsum(d1)
    with bulkmap.open(n, verify=True) as new:
        assert bytes(memoryview(new)) == d2
    assert bulkmap.stat(n)["xxh3"] == xxhsum(d2)
    mv.release()
    old.close()
    assert [s["name"] for s in bulkmap.ls()["sections"]].count(n) == 1


def test_replace_while_readers_open(names, pattern_file):
    """Every open during five replaces gives one whole generation, never ENOENT."""
    gens = [pattern_file(256 << 10, name="g%d" % i, seed=b"gen%d" % i) for i in range(6)]
    n = names("loop")
    bulkmap.load(gens[0][0], n)
    datas = {d for _, d in gens}
    stop = threading.Event()
    seen, errors = [], []

    def reader():
        while not stop.is_set():
            try:
                with bulkmap.open(n, verify=False) as ds:
                    b = bytes(memoryview(ds))
                seen.append(b in datas)
            except bulkmap.Error as e:
                errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    for path, _ in gens[1:]:
        bulkmap.load(path, n, replace=True)
        time.sleep(0.02)
    stop.set()
    t.join()
    assert errors == []
    assert seen and all(seen)
    with bulkmap.open(n) as ds:
        assert bytes(memoryview(ds)) == gens[-1][1]


def test_replace_by_another_user_is_refused(names):
    import shutil
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv(1) to act as another user")
    import tempfile
    data = os.urandom(50000)
    f = tempfile.NamedTemporaryFile(prefix="bulkmap-perm-", dir="/tmp")  # others may read it
    f.write(data)
    f.flush()
    os.chmod(f.name, 0o644)
    path = f.name
    n = names("perm")
    before = bulkmap.load(path, n, mode=0o644)
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, "-c",
                        "import sys, bulkmap\n"
                        "try:\n    bulkmap.load(sys.argv[1], sys.argv[2], replace=True)\n"
                        "except bulkmap.Error as e:\n    print(e.code, e)\n", str(path), n],
                       capture_output=True, text=True, env=dict(os.environ))
    assert p.stdout.startswith("EPERM "), p.stdout + p.stderr
    assert "owner" in p.stdout
    st = bulkmap.stat(n)  # the old one, as it was
    assert st["writer_pid"] == before["writer_pid"] and st["xxh3"] == xxhsum(data)


def test_replace_of_a_missing_name_makes_it(names, pattern_file):
    path, data = pattern_file(10000)
    n = names("fresh")
    assert bulkmap.load(path, n, replace=True)["xxh3"] == xxhsum(data)
    with bulkmap.open(n) as ds:
        assert bytes(memoryview(ds)) == data


# ---- ls maps

def test_ls_maps(names, pattern_file):
    path, _ = pattern_file(100000)
    n = names("maps")
    bulkmap.load(path, n)

    def maps():
        (e,) = [s for s in bulkmap.ls()["sections"] if s["name"] == n]
        return e["maps"]

    assert all("maps" in s for s in bulkmap.ls(all=True)["sections"])
    if maps() is None:
        pytest.skip("the library cannot see who maps a section here (maps is None)")
    assert maps() == 0
    with bulkmap.open(n):
        assert maps() == 1
        p = subprocess.Popen([sys.executable, "-c",
                              "import bulkmap, sys\nd = bulkmap.open(sys.argv[1])\n"
                              "print('open', flush=True)\nsys.stdin.read()\n", n],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "open"
            assert maps() == 2
        finally:
            p.stdin.close()
            p.wait()
        assert maps() == 1
    assert maps() == 0


# ---- remove_on_exit

HOLDER = """
import sys, time, bulkmap
how, path, name, replace = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
data = open(path, "rb").read()
if how == "load":
    bulkmap.load(path, name, replace=replace, remove_on_exit=True)
elif how == "publish":
    bulkmap.publish(name, data, replace=replace, remove_on_exit=True)
else:
    ds = bulkmap.create(name, len(data), replace=replace, remove_on_exit=True)
    memoryview(ds)[:] = data
    ds.publish()
print("made", flush=True)
time.sleep(120)
"""


def start_holder(path, n, how="load", replace=False):
    if not hasattr(bulkmap, how):
        pytest.skip("bulkmap.%s is not there yet" % how)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, how, str(path), n,
                          "1" if replace else "0"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline().strip()
    if line != "made":
        p.kill()
        pytest.fail("the holder failed: %s" % p.communicate()[1])
    return p


def gone_within(n, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            bulkmap.stat(n)
        except bulkmap.Error as e:
            if e.code == "ENOENT":
                return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("how", ["load", "publish", "create"])
@pytest.mark.parametrize("replace", [False, True])
def test_remove_on_exit_sigkill(names, procs, pattern_file, how, replace):
    path, data = pattern_file(200000)
    n = names("exit")
    if replace:
        bulkmap.load(path, n)  # replaced by the holder, then removed with it
    procs.append(p := start_holder(path, n, how, replace))
    st = bulkmap.stat(n)
    assert st["state"] == "ready" and st["writer_pid"] == p.pid
    with bulkmap.open(n) as ds:
        assert bytes(memoryview(ds)) == data
    time.sleep(0.3)
    assert bulkmap.stat(n)["state"] == "ready"  # the binding is not the removal
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert gone_within(n, 5)


def test_remove_on_exit_leaves_a_name_replaced_since(names, procs, pattern_file):
    path, _ = pattern_file(200000)
    path2, data2 = pattern_file(300000, name="new.txt", seed=b"new")
    n = names("exit-replaced")
    procs.append(p := start_holder(path, n))
    bulkmap.load(path2, n, replace=True)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not gone_within(n, 1.5)
    with bulkmap.open(n) as ds:
        assert bytes(memoryview(ds)) == data2


def test_remove_on_exit_normal_exit(names, pattern_file):
    path, _ = pattern_file(1000)
    n = names("exit-normal")
    subprocess.run([sys.executable, "-c",
                    "import sys, bulkmap\nbulkmap.load(sys.argv[1], sys.argv[2], remove_on_exit=True)",
                    str(path), n], check=True)
    assert gone_within(n, 5)


# ---- rm(abandoned=True), in a mount namespace of its own

def _reclaim_scenario(tool, tmp):
    """Run inside `unshare -m` with a fresh tmpfs on /dev/shm: a live writer, a dead one,
    a ready dataset; rm(abandoned=True); then the tool's rm --abandoned --json."""
    import pathlib
    tmp = pathlib.Path(tmp)
    path, _ = sparse(tmp)
    small = tmp / "small.txt"
    small.write_bytes(b"ready and kept\n" * 1000)
    live = catch_loading(tool, path, "py-live")
    dead = catch_loading(tool, path, "py-dead")
    dead_pid = dead.pid
    dead.kill()
    dead.wait()
    bulkmap.load(small, "py-ready")
    before = {s["name"]: s for s in bulkmap.ls()["sections"]}
    r = bulkmap.rm(abandoned=True)
    after = {s["name"]: s["state"] for s in bulkmap.ls()["sections"]}
    # The tool's keys, for one more abandoned dataset.
    other = catch_loading(tool, path, "py-dead2")
    other.kill()
    other.wait()
    t = subprocess.run([tool, "rm", "--abandoned", "--json"], capture_output=True, text=True)
    again = bulkmap.rm(abandoned=True)
    os.kill(live.pid, signal.SIGCONT)
    rc = live.wait(60)
    print(json.dumps({"removed": r, "before": before, "after": after, "dead_pid": dead_pid,
                      "tool": json.loads(t.stdout), "tool_rc": t.returncode, "again": again,
                      "live_rc": rc, "live_state": bulkmap.stat("py-live")["state"]}))


NS_SCRIPT = r"""
mount -t tmpfs -o size=2g,mode=1777 tmpfs /dev/shm || exit 77
for m in $(awk '$3 == "hugetlbfs" {print $2}' /proc/mounts); do umount "$m" || exit 77; done
exec "$0" "$@"
"""


def _in_private_shm(*args, timeout=300):
    """This file's scenario ARGS run in `unshare -m` with a /dev/shm of its own (NS_SCRIPT);
    the JSON it prints last. Skips where there is no such namespace (not root)."""
    try:
        p = subprocess.run(["unshare", "-m", "sh", "-c", NS_SCRIPT, sys.executable,
                            os.path.join(HERE, "test_lifecycle.py"), *args],
                           capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        pytest.skip("unshare(1) is not installed (util-linux)")
    if p.returncode == 77 or "unshare failed" in p.stderr:
        pytest.skip("no private mount namespace with its own /dev/shm here (needs root): "
                    + p.stderr.strip())
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_rm_abandoned_beside_a_live_writer(tool, tmp_path):
    out = _in_private_shm("reclaim", tool, str(tmp_path))
    r = out["removed"]
    assert set(r) == {"removed", "freed_bytes"}
    assert [x["name"] for x in r["removed"]] == ["py-dead"]
    (x,) = r["removed"]
    assert set(x) == {"name", "place", "bytes", "state", "writer_pid"}
    assert x["place"] == "/dev/shm" and x["state"] == "abandoned"
    assert x["writer_pid"] == out["dead_pid"]
    assert x["bytes"] >= BIG and r["freed_bytes"] == x["bytes"]  # the payload: no trailer now
    assert out["before"]["py-dead"]["state"] == "abandoned"
    # The live writer's and the ready one are kept.
    assert out["after"] == {"py-live": "loading", "py-ready": "ready"}
    assert out["live_rc"] == 0 and out["live_state"] == "ready"
    # Python's dict has the tool's keys.
    assert out["tool_rc"] == 0
    assert set(out["tool"]) == set(r)
    assert [set(e) for e in out["tool"]["removed"]] == [set(x)]
    assert out["tool"]["removed"][0]["name"] == "py-dead2"
    assert out["again"] == {"removed": [], "freed_bytes": 0}


def test_rm_arguments(names):
    with pytest.raises(TypeError):
        bulkmap.rm()
    with pytest.raises(TypeError):
        bulkmap.rm(names(), abandoned=True)
    with pytest.raises(TypeError):
        bulkmap.rm(force=True, abandoned=True)


# ---- bulkmap.dask.load

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_dask_load_once_per_host(client, names, pattern_file, tmp_path):
    import bulkmap.dask as bd
    path, data = pattern_file(2 << 20, name="d1.txt", seed=b"first")
    path2, data2 = pattern_file((2 << 20) + 77, name="d2.txt", seed=b"second")
    n = names("dask")
    hosts = bd.hosts(client)
    assert len(hosts) == 1 and len(next(iter(hosts.values()))) == 2  # 2 workers, one host
    host = next(iter(hosts))
    r = bd.load(path, n, client)
    assert r == {"hosts": [{"host": host, "state": "ready", "xxh3": xxhsum(str(path)),
                            "page_size": r["hosts"][0]["page_size"], "error": None}]}
    assert r["hosts"][0]["page_size"] >= 4096
    # Loaded once, by one of the workers.
    pids = set(client.run(os.getpid).values())
    assert bulkmap.stat(n)["writer_pid"] in pids
    with bulkmap.open(n) as ds:
        assert bytes(memoryview(ds)) == data
    # Again without replace: the host's EEXIST.
    r = bd.load(path2, n, client)
    (h,) = r["hosts"]
    assert h["host"] == host and h["state"] is None and h["xxh3"] is None
    assert "EEXIST" in h["error"] and n in h["error"]
    # With replace: the new bytes.
    r = bd.load(path2, n, client, replace=True)
    assert r["hosts"][0]["error"] is None and r["hosts"][0]["xxh3"] == xxhsum(data2)
    with bulkmap.open(n) as ds:
        assert bytes(memoryview(ds)) == data2
    # A file the host cannot read: its error, by path.
    r = bd.load(tmp_path / "missing", names("dask-missing"), client)
    assert "ENOENT" in r["hosts"][0]["error"] and "missing" in r["hosts"][0]["error"]


def test_fork_of_a_writer_is_not_the_writer(names):
    """create(), then os.fork(): the parent dies without publishing while the child lives on.
    The child is not the writer, so the dataset is abandoned at once, not `loading` for as
    long as the child lives; with ds.handoff() before the fork the child is the writer."""
    import struct
    name = names("fork")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ds = bulkmap.create(name, size=4096)
            c = os.fork()
            if c == 0:
                time.sleep(30)
                os._exit(0)
            os.write(w, struct.pack("<i", c))
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    grandchild = struct.unpack("<i", os.read(r, 4))[0]
    os.waitpid(pid, 0)
    try:
        with pytest.raises(bulkmap.Error) as e:
            bulkmap.open(name, wait=5)
        assert e.value.code == "EABANDONED"
    finally:
        os.kill(grandchild, signal.SIGKILL)
    bulkmap.rm(name)
    # Handed on: the child fills and publishes, the parent only closes.
    ds = bulkmap.create(name, size=4096)
    ds.handoff()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            memoryview(ds)[:4] = b"kid!"
            ds.publish()
            code = 0
        finally:
            os._exit(code)
    ds.close()
    _, st = os.waitpid(pid, 0)
    assert os.WIFEXITED(st) and os.WEXITSTATUS(st) == 0
    with bulkmap.open(name, verify=True) as rd:
        assert bytes(memoryview(rd)[:4]) == b"kid!"


def test_source_stability(tool, tmp_path, names):
    """A write the file's size and times do not show (a shared mapping whose pages are dirty
    already): where a read lease can be had the load holds it, and someone opening the file
    for writing meanwhile fails the load (ECHANGED) after waiting milliseconds, not the
    lease-break time; where none can be had the load says the stability was not checked."""
    import numpy as np
    path = tmp_path / "src.bin"
    path.write_bytes(os.urandom(4 << 20))
    r = bulkmap.load(str(path), names("stable"), large_pages="off")
    assert r["source_stable"] is True and r["source_unstable_why"] is None
    m = np.memmap(path, dtype=np.uint8, mode="r+")  # open for writing, pages dirty
    m[0] ^= 1
    r = bulkmap.load(str(path), names("unstable"), large_pages="off")
    assert r["source_stable"] is False and "open for writing" in r["source_unstable_why"]
    del m
    # Someone opens it for writing while the load is under way: the loader is stopped while
    # loading, the open waits for the lease, the loader goes on and releases it at once. A
    # sparse source of BIG bytes, so the load lasts long enough to be caught (4 MiB load in
    # milliseconds, and a busy machine may not stop it before it ends).
    path, _ = sparse(tmp_path)
    name = names("broken")
    p = catch_loading(tool, path, name)
    took = []

    def opener():
        t = time.monotonic()
        fd = os.open(path, os.O_RDWR)
        took.append(time.monotonic() - t)
        os.close(fd)

    th = threading.Thread(target=opener)
    th.start()
    time.sleep(0.2)
    os.kill(p.pid, signal.SIGCONT)
    th.join(30)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1 and b"file changed as we read it" in err, (p.returncode, err)
    assert took and took[0] < 5.0, took  # the lease-break time is 45 s
    assert not os.path.exists("/dev/shm/" + name) and not os.path.exists("/dev/shm/bulkmap#" + name)


def _watchers_of(name):
    """Pids of the remove_on_exit watchers that name NAME in their arguments."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if len(args) > 3 and args[3] == b"bulkmap-watch" and name.encode() in args:
            out.append(int(pid))
    return out


def _the_watcher_of(name):
    """The one watcher of NAME, once it has exec'd (it is forked, then execs /bin/sh)."""
    for _ in range(500):
        w = _watchers_of(name)
        if w:
            assert len(w) == 1, w
            return w[0]
        time.sleep(0.01)
    raise AssertionError("no watcher of %s" % name)


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def test_remove_on_exit_watcher_is_small_and_stops_cleanly(names):
    """The watcher is a program of its own: none of the caller's memory (a 256 MiB array
    published and deleted), none of its command line; told to stop (SIGTERM, as systemctl
    stop of the caller's unit does) it removes the dataset; killed outright (SIGKILL) along
    with its process, what it bound is reclaimed by rm --abandoned."""
    import numpy as np
    name = names("watch")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            a = np.ones(64 << 20, dtype=np.float32)  # 256 MiB, private to this process
            bulkmap.publish(name, a, remove_on_exit=True)
            del a
            os.write(w, b"x")
            time.sleep(60)
            code = 0
        finally:
            os._exit(code)
    assert os.read(r, 1) == b"x"
    try:
        wpid = _the_watcher_of(name)
        assert _rss_kib(wpid) < 16 << 10, _rss_kib(wpid)  # KiB: a shell's, not 256 MiB
        with open("/proc/%d/cmdline" % wpid, "rb") as f:
            cmd = f.read()
        assert cmd.startswith(b"sh\0") and os.path.basename(sys.executable).encode() not in cmd
        os.kill(wpid, signal.SIGTERM)
        for _ in range(500):  # the metadata goes last
            if not os.path.exists("/dev/shm/bulkmap#" + name):
                break
            time.sleep(0.01)
        assert not os.path.exists("/dev/shm/" + name)
        assert not os.path.exists("/dev/shm/bulkmap#" + name)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _watchkill_scenario():
    """Run inside `unshare -m` with a fresh tmpfs on /dev/shm (rm(abandoned=True) reclaims
    every abandoned dataset it sees: in the shared /dev/shm it would take the ones other
    tests running meanwhile leave abandoned on purpose, and they take this one): a watcher
    and its process killed together; the binding's lock is gone, rm --abandoned reclaims."""
    name = "py-watchkill"
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            bulkmap.publish(name, b"z" * 100000, remove_on_exit=True)
            os.write(w, b"x")
            time.sleep(60)
            code = 0
        finally:
            os._exit(code)
    assert os.read(r, 1) == b"x"
    wpid = _the_watcher_of(name)
    os.kill(wpid, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    state = bulkmap.stat(name)["state"]
    got = bulkmap.rm(abandoned=True)
    print(json.dumps({"state": state, "removed": [x["name"] for x in got["removed"]],
                      "left": os.path.exists("/dev/shm/" + name)
                      or os.path.exists("/dev/shm/bulkmap#" + name)}))


def test_remove_on_exit_watcher_killed_with_its_process_is_reclaimed():
    out = _in_private_shm("watchkill", timeout=120)
    assert out["state"] == "ready"  # still whole, until reclaimed
    assert out["removed"] == ["py-watchkill"]
    assert not out["left"]


def _producer(name, payload, rounds, seed):
    """publish NAME, then rm --force it, again and again (another producer does the same):
    EEXIST (the other one holds it), ENOENT and EREPLACED (the other one removed it, and
    may have claimed it again) are the race's own outcomes; anything else is a failure
    (exit 1)."""
    import random
    rng = random.Random(seed)
    for _ in range(rounds):
        try:
            bulkmap.publish(name, payload, large_pages="off")
        except bulkmap.Error as e:
            # EEXIST: the other one holds the name; ENOENT: its rm --force took this one's
            # metadata away while it was published (the publish then takes NAME back);
            # EREPLACED: its rm --force took this one's claim away just after it was made,
            # and the other one claimed NAME anew before this one opened its claim by name
            # again (src/posix/store.c: the create leaves the other's claim alone).
            if e.code not in ("EEXIST", "ENOENT", "EREPLACED"):
                print("publish: %s" % e, file=sys.stderr)
                os._exit(1)
        time.sleep(rng.random() * 0.004)
        try:
            bulkmap.rm(name, force=True)
        except bulkmap.Error as e:
            # ENOENT: already gone; EREPLACED: the name was made again meanwhile, by the other
            # one, and that dataset is left alone (rm removes only what it looked at).
            if e.code not in ("ENOENT", "EREPLACED"):
                print("rm: %s" % e, file=sys.stderr)
                os._exit(1)
    os._exit(0)


def test_open_wait_under_two_producers_that_publish_and_remove(names):
    """Two producers publish and rm --force the same name in a loop; open(wait=1) meanwhile
    gives a whole dataset of one of them (verified), times out, or meets a publish the other
    producer's rm --force made fail; never ECORRUPT, ENOTDATASET or EACCES (issue 26: it
    ended early with those; ENOTDATASET was an open that found no metadata, then NAME of a
    dataset made between its two looks, and judged its bytes as the previous layout's)."""
    name = names("twoprod")
    payloads = [bytes([65 + i]) * (1 << 20) for i in range(2)]
    pids = []
    for i in range(2):
        pid = os.fork()
        if pid == 0:
            _producer(name, payloads[i], 150, i)
        pids.append(pid)
    opened, bad, live, codes = 0, [], set(pids), {}
    try:
        while live and len(bad) < 5:
            for p in list(live):
                done, status = os.waitpid(p, os.WNOHANG)
                if done:
                    live.discard(p)
                    codes[p] = status
            try:
                with bulkmap.open(name, wait=1, verify=True) as ds:
                    if bytes(memoryview(ds)) not in payloads:
                        bad.append("mixed bytes")
                    opened += 1
            except bulkmap.Error as e:
                # A publish that one producer's rm --force cut short is a load that failed:
                # the wait ends on it by design (docs/datasets.md); nothing else may end it.
                if e.code != "ETIMEDOUT" and not (e.code == "EINCOMPLETE" and "failed" in str(e)):
                    bad.append("%s: %s" % (e.code, e))
    finally:
        for p in live:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(p, 0)
            except ChildProcessError:
                pass
        try:
            bulkmap.rm(name, force=True)
        except bulkmap.Error:
            pass
    assert not bad, bad
    assert all(c == 0 for c in codes.values()), codes  # the producers met only EEXIST, ENOENT
    assert opened > 0


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "reclaim":
    _reclaim_scenario(sys.argv[2], sys.argv[3])
elif __name__ == "__main__" and len(sys.argv) == 2 and sys.argv[1] == "watchkill":
    _watchkill_scenario()
