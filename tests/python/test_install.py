"""cmake --install puts the package in lib/python3/dist-packages, and it imports from there
(a module with nothing to find at import time: the library is linked in)."""
import os
import subprocess
import sys

import pytest


def test_installed_package_imports(tmp_path):
    build = os.environ.get("BULKMAP_BUILD_DIR")
    if not build:
        pytest.skip("BULKMAP_BUILD_DIR is not set (run through ctest)")
    subprocess.run(["cmake", "--install", build, "--prefix", str(tmp_path)], check=True,
                   capture_output=True)
    site = tmp_path / "lib" / "python3" / "dist-packages"
    assert (site / "bulkmap" / "__init__.py").exists()
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, "-c",
                          "import bulkmap, bulkmap.dask; print(bulkmap.__file__); "
                          "print(bulkmap.scan(bulkmap.__file__)['bytes'])"],
                         env=env, cwd=str(tmp_path), capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == str(site / "bulkmap" / "__init__.py")
    assert int(out[1]) == os.path.getsize(out[0])
