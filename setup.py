"""Builds the bulkmap Python package from this tree: the library (src/*.c and the POSIX
backend src/posix/*.c, compiled as CMake compiles them) into a static helper library, and
the extension bulkmap._bulkmap (python/_bulkmap.c, the same binding CMake builds) linked
with it, for the interpreter that runs the build. Metadata: pyproject.toml."""
import glob
import os
import re
import shlex
import subprocess

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)  # setuptools wants paths relative to the project


def version():
    with open("CMakeLists.txt", encoding="utf-8") as f:
        return re.search(r"project\(bulkmap VERSION ([0-9.]+)", f.read()).group(1)


def pkg_config(*args):
    try:
        return shlex.split(subprocess.run(["pkg-config", *args], check=True,
                                          capture_output=True, text=True).stdout)
    except (OSError, subprocess.CalledProcessError):
        return []


# cJSON (safetensors headers) and xxHash (header-only) from the system: libcjson-dev,
# libxxhash-dev.
cjson_cflags = pkg_config("--cflags", "libcjson")
cjson_libs = [a[2:] for a in pkg_config("--libs-only-l", "libcjson")] or ["cjson"]
cjson_dirs = [a[2:] for a in pkg_config("--libs-only-L", "libcjson")]
include_dirs = [a[2:] for a in cjson_cflags if a.startswith("-I")]

lib_sources = sorted(glob.glob("src/*.c")) + sorted(glob.glob("src/posix/*.c"))
c11 = ["-std=c11", "-fvisibility=hidden"]

# Build products under build/ (ignored by git), not beside the sources.
os.makedirs("build/setuptools", exist_ok=True)

setup(
    version=version(),
    options={"build": {"build_base": "build/setuptools"},
             "egg_info": {"egg_base": "build/setuptools"}},
    libraries=[("bulkmap_core", {
        "sources": lib_sources,
        "include_dirs": ["include", "src", *include_dirs],
        "macros": [("BULKMAP_BUILDING", None), ("_FILE_OFFSET_BITS", "64")],
        "cflags": c11,
    })],
    ext_modules=[Extension(
        "bulkmap._bulkmap",
        sources=["python/_bulkmap.c"],
        include_dirs=["include"],
        libraries=["bulkmap_core", *cjson_libs, "pthread", "rt"],
        library_dirs=cjson_dirs,
        extra_compile_args=c11,
        # The library's symbols stay inside the module, as CMake's build keeps them.
        extra_link_args=["-Wl,--exclude-libs,ALL"],
    )],
)
