"""The Python package installed the ways a user installs it, each then imported and used
for a scan from outside the tree:
- `cmake --install` with the default prefix (staged with DESTDIR, so the machine is not
  touched): the module lands in the directory the interpreter's sysconfig names for
  /usr/local, which is on that interpreter's own sys.path (no PYTHONPATH needed);
- `cmake --install --prefix P`: the same layout under P;
- `pip install --no-build-isolation .` into a venv (--system-site-packages, numpy from
  Debian), built from this source tree by setup.py; it installs the `bulkmap` command too
  (the tool built with the wheel), used as a pip-only user would: `bulkmap --version`,
  `bulkmap load x.safetensors --name w`, then `bulkmap.open(w).tensors()`;
- `python3 -m build --wheel --no-isolation`, where python3-build is installed."""
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BULKMAP_BUILD_DIR")
SCAN = ("import bulkmap, json, sys; r = bulkmap.scan(sys.argv[1], count='ERROR'); "
        "print(json.dumps({'file': bulkmap.__file__, 'bytes': r['bytes'], 'count': r['count']}))")


def _data(tmp_path):
    p = tmp_path / "data.txt"
    p.write_bytes(b"ERROR one\nok\nERROR two ERROR\n" * 100)
    return p


def _run_scan(python, data, env=None):
    out = subprocess.run([python, "-c", SCAN, str(data)], env=env, cwd="/", capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["bytes"] == data.stat().st_size and r["count"] == 300
    return r


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def _need_build():
    if not BUILD:
        pytest.skip("BULKMAP_BUILD_DIR is not set (run through ctest)")


def _site_for(prefix):
    return subprocess.run([sys.executable, os.path.join(SRC, "cmake", "python_site.py"), prefix],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_default_prefix_install_is_on_sys_path(tmp_path):
    """A default cmake --install (prefix /usr/local) puts the module where this python3
    looks without PYTHONPATH."""
    _need_build()
    prefix = subprocess.run(["cmake", "-L", "-N", BUILD], check=True, capture_output=True,
                            text=True).stdout
    prefix = [ln.split("=", 1)[1] for ln in prefix.splitlines()
              if ln.startswith("CMAKE_INSTALL_PREFIX:")][0]
    stage = tmp_path / "stage"
    subprocess.run(["cmake", "--install", BUILD], check=True, capture_output=True,
                   env=dict(os.environ, DESTDIR=str(stage)))
    site = _site_for(prefix)
    staged = stage / site.lstrip("/")
    assert (staged / "bulkmap" / "__init__.py").exists(), sorted(map(str, stage.rglob("__init__.py")))
    # That directory is on the interpreter's own sys.path (Debian: /usr/local/lib/python3.11/
    # dist-packages), so after a real install `import bulkmap` needs nothing more.
    path = subprocess.run([sys.executable, "-c", "import sys, json; print(json.dumps(sys.path))"],
                          env=_clean_env(), capture_output=True, text=True, check=True).stdout
    if prefix == "/usr/local" and sysconfig.get_default_scheme() in ("posix_local", "posix_prefix"):
        assert site in json.loads(path), (site, path)
    # The staged copy imports and scans (PYTHONPATH only because it is staged).
    r = _run_scan(sys.executable, _data(tmp_path), _clean_env(PYTHONPATH=str(staged)))
    assert r["file"] == str(staged / "bulkmap" / "__init__.py")


def test_prefix_install_imports(tmp_path):
    _need_build()
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", BUILD, "--prefix", str(prefix)], check=True,
                   capture_output=True)
    site = _site_for(str(prefix))
    assert os.path.isfile(os.path.join(site, "bulkmap", "__init__.py"))
    env = _clean_env(PYTHONPATH=site)
    r = _run_scan(sys.executable, _data(tmp_path), env)
    assert r["file"] == os.path.join(site, "bulkmap", "__init__.py")
    subprocess.run([sys.executable, "-c", "import bulkmap.dask"], env=env, cwd="/", check=True)


def _copy_source(dst):
    ignore = shutil.ignore_patterns("build", ".git", "__pycache__", "*.egg-info")
    shutil.copytree(SRC, dst, ignore=ignore, symlinks=True)
    return dst


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory):
    """One copy of the tree for pip and python3 -m build, as a user's own checkout: both
    build in it (in-tree), so the second compiles only what is not up to date (nothing)
    instead of the library, the extension and the tool a second time."""
    return _copy_source(tmp_path_factory.mktemp("tree") / "src")


def test_pip_install_in_venv(tmp_path, source_tree):
    """python3 -m venv --system-site-packages v && v/bin/pip install --no-build-isolation ."""
    src = source_tree
    venv = tmp_path / "v"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, capture_output=True)
    py = str(venv / "bin" / "python")
    out = subprocess.run([py, "-m", "pip", "install", "--no-build-isolation", "--no-index", "-q",
                          str(src)], capture_output=True, text=True, env=_clean_env(),
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    r = _run_scan(py, _data(tmp_path), _clean_env())
    assert r["file"].startswith(str(venv)), r
    # numpy from the system, zero copy from a dataset the venv's module publishes.
    code = ("import bulkmap, numpy, os; n = 'bmpip-%d' % os.getpid(); "
            "bulkmap.load(__import__('sys').argv[1], n); d = bulkmap.open(n); "
            "a = numpy.frombuffer(d, dtype=numpy.uint8); print(int(a[0])); del a; d.close(); "
            "bulkmap.rm(n)")
    out = subprocess.run([py, "-c", code, str(tmp_path / "data.txt")], capture_output=True,
                         text=True, env=_clean_env(), cwd="/")
    if "numpy" in out.stderr and "No module" in out.stderr:
        pytest.skip("no numpy for " + py)
    assert out.returncode == 0 and out.stdout.strip() == str(ord("E")), out.stderr
    _pip_user_transcript(venv, tmp_path)


def _version():
    import re
    with open(os.path.join(SRC, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(bulkmap VERSION ([0-9.]+)", f.read()).group(1)


TENSORS = r"""
import bulkmap, json, sys, torch
ds = bulkmap.open(sys.argv[1])
ts = ds.tensors()
print(json.dumps({"dtypes": ds.dtypes, "metadata": ds.metadata,
                  "w": torch.equal(ts["w"], torch.arange(12, dtype=torch.float32).reshape(3, 4)),
                  "b": torch.equal(ts["b"], torch.tensor([1.5, -2.25, 3.0], dtype=torch.bfloat16)),
                  "b_dtype": str(ts["b"].dtype)}))
"""


def _pip_user_transcript(venv, tmp_path):
    """What a pip-only user runs: the venv's bin on PATH, nothing of the build tree."""
    import struct
    bindir = venv / "bin"
    assert (bindir / "bulkmap").exists(), sorted(os.listdir(bindir))
    env = _clean_env(PATH=str(bindir) + os.pathsep + os.environ.get("PATH", ""))
    env.pop("BULKMAP_TOOL", None)
    out = subprocess.run(["bulkmap", "--version"], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path))
    assert out.returncode == 0 and out.stdout.strip() == "bulkmap " + _version(), out
    out = subprocess.run([str(bindir / "python"), "-m", "bulkmap", "--version"], capture_output=True,
                         text=True, env=env, cwd=str(tmp_path))
    assert out.returncode == 0 and out.stdout.strip() == "bulkmap " + _version(), out
    # x.safetensors, written from the format's description: F32 w (3, 4), BF16 b (3,).
    import numpy as np
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = (np.array([1.5, -2.25, 3.0], dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
    header = {"w": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
              "b": {"dtype": "BF16", "shape": [3], "data_offsets": [48, 54]},
              "__metadata__": {"format": "pt"}}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    (tmp_path / "x.safetensors").write_bytes(struct.pack("<Q", len(h)) + h + w.tobytes() + b.tobytes())
    name = "bmpip-w-%d" % os.getpid()
    try:
        out = subprocess.run(["bulkmap", "load", "x.safetensors", "--name", name, "--no-progress",
                              "--json"], capture_output=True, text=True, env=env, cwd=str(tmp_path))
        assert out.returncode == 0, out
        r = json.loads(out.stdout)
        assert r["name"] == name and r["format"] == "safetensors" and r["state"] == "ready"
        out = subprocess.run([str(bindir / "python"), "-c", TENSORS, name], capture_output=True,
                             text=True, env=env, cwd="/")
        if "No module named 'torch'" in out.stderr:
            pytest.skip("no torch for the venv (Debian python3-torch)")
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert got == {"dtypes": {"w": "F32", "b": "BF16"}, "metadata": {"format": "pt"},
                       "w": True, "b": True, "b_dtype": "torch.bfloat16"}, got
        out = subprocess.run(["bulkmap", "rm", name], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out
    finally:
        subprocess.run(["bulkmap", "rm", name], capture_output=True, env=env)
        assert not os.path.exists("/dev/shm/" + name)


def test_build_wheel_no_isolation(tmp_path, source_tree):
    """python3 -m build --wheel --no-isolation (python3-build)."""
    probe = subprocess.run([sys.executable, "-c", "import build"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("python3-build is not installed")
    src = source_tree
    out = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                          str(tmp_path / "dist"), str(src)], capture_output=True, text=True,
                         env=_clean_env())
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    wheels = list((tmp_path / "dist").glob("bulkmap-*.whl"))
    assert len(wheels) == 1
    target = tmp_path / "t"
    subprocess.run([sys.executable, "-m", "zipfile", "-e", str(wheels[0]), str(target)], check=True)
    assert (target / "bulkmap" / "__init__.py").exists()
    # The tool is in the wheel, executable, and the wheel names the command that runs it.
    tool = target / "bulkmap" / "_bin" / "bulkmap"
    import zipfile
    with zipfile.ZipFile(wheels[0]) as z:
        info = z.getinfo("bulkmap/_bin/bulkmap")
        assert (info.external_attr >> 16) & 0o111, oct(info.external_attr >> 16)
        eps = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        assert eps and "bulkmap = bulkmap.__main__:main" in z.read(eps[0]).decode()
    os.chmod(tool, 0o755)  # zipfile -e drops the mode; pip keeps it
    out = subprocess.run([str(tool), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("bulkmap "), out
    r = _run_scan(sys.executable, _data(tmp_path), _clean_env(PYTHONPATH=str(target)))
    assert r["file"] == str(target / "bulkmap" / "__init__.py")
