"""Builds the bulkmap Python package from this tree: the library (src/*.c and the POSIX
backend src/posix/*.c, compiled as CMake compiles them) into a static helper library, and
the extension bulkmap._bulkmap (python/src/*.c, the same binding CMake builds) linked
with it, for the interpreter that runs the build. Metadata: pyproject.toml.

The tool too (docs/design.md section 5: a pip-only user has the `bulkmap` command): the C
program of tools/bulkmap (with tools/bench and the libuv pipeline src/uv, as
tools/CMakeLists.txt builds it) linked with the same helper library into
bulkmap/_bin/bulkmap inside the package; the console script `bulkmap`
(pyproject.toml: bulkmap.__main__:main) runs it. It needs libuv (libuv1-dev); without it
the package is built without the tool and says so."""
import glob
import os
import re
import shlex
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)  # setuptools wants paths relative to the project


def _newest_header():
    """The newest mtime of any header (and of setup.py): an object older is compiled again."""
    newest = os.path.getmtime(os.path.abspath(__file__))
    for pattern in ("include/**/*.h", "src/**/*.h", "python/src/*.h", "tools/**/*.h"):
        for h in glob.glob(pattern, recursive=True):
            newest = max(newest, os.path.getmtime(h))
    return newest


_NEWEST_HEADER = []


def _up_to_date(obj, src):
    """An object newer than its source and every header is kept, as make keeps it: pip
    install or python3 -m build run again in the same tree compiles only what changed."""
    if not _NEWEST_HEADER:
        _NEWEST_HEADER.append(_newest_header())
    try:
        t = os.path.getmtime(obj)
    except OSError:
        return False
    return t >= os.path.getmtime(src) and t >= _NEWEST_HEADER[0]


def _compile_in_parallel(self, sources, output_dir=None, macros=None, include_dirs=None,
                         debug=0, extra_preargs=None, extra_postargs=None, depends=None):
    """CCompiler.compile, one source a CPU at a time (setuptools compiles one by one): the
    library, the extension and the tool are some 60 files."""
    from concurrent.futures import ThreadPoolExecutor
    macros, objects, extra_postargs, pp_opts, build = self._setup_compile(
        output_dir, macros, include_dirs, sources, depends, extra_postargs)
    cc_args = self._get_cc_args(pp_opts, debug, extra_preargs)

    def one(obj):
        if obj in build:
            src, ext = build[obj]
            if _up_to_date(obj, src):
                return
            self._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(one, objects))
    return objects


try:
    from setuptools._distutils import ccompiler as _ccompiler
except ImportError:  # an older setuptools: the standard library's distutils
    from distutils import ccompiler as _ccompiler
_ccompiler.CCompiler.compile = _compile_in_parallel


def version():
    with open("CMakeLists.txt", encoding="utf-8") as f:
        return re.search(r"project\(bulkmap VERSION ([0-9.]+)", f.read()).group(1)


def pkg_config(*args):
    try:
        return shlex.split(subprocess.run(["pkg-config", *args], check=True,
                                          capture_output=True, text=True).stdout)
    except (OSError, subprocess.CalledProcessError):
        return []


def json_library():
    """The JSON library the sources include (libjansson, or cJSON before the switch): its
    pkg-config name and the library to link when pkg-config does not know it."""
    text = ""
    for p in glob.glob("src/*.c"):
        with open(p, encoding="utf-8", errors="replace") as f:
            text += f.read()
    if "<jansson.h>" in text:
        return "jansson", "jansson"
    return "libcjson", "cjson"


# The JSON library (safetensors headers: libjansson-dev) and xxHash (header-only:
# libxxhash-dev) from the system.
json_pc, json_lib = json_library()
json_cflags = pkg_config("--cflags", json_pc)
json_libs = [a[2:] for a in pkg_config("--libs-only-l", json_pc)] or [json_lib]
json_dirs = [a[2:] for a in pkg_config("--libs-only-L", json_pc)]
include_dirs = [a[2:] for a in json_cflags if a.startswith("-I")]

lib_sources = sorted(glob.glob("src/*.c")) + sorted(glob.glob("src/posix/*.c"))
c11 = ["-std=c11", "-fvisibility=hidden"]

# The tool's sources, as tools/CMakeLists.txt picks them on Linux.
tool_sources = ([p for p in sorted(glob.glob("tools/bulkmap/*.c"))
                 if not re.search(r"/(plat_[a-z]+|bench_os)\.c$", p)]
                + ["tools/bulkmap/plat_posix.c", "tools/bench/bench.c", "tools/bench/bench_posix.c",
                   "src/uv/pipeline.c", "src/uv/scan.c", "src/uv/wake_posix.c"])


class build_ext_and_tool(build_ext):
    """build_ext, then the tool into the package's _bin/ (beside the extension)."""

    def run(self):
        super().run()
        if os.environ.get("BULKMAP_NO_TOOL"):
            return
        try:
            self.build_tool()
        except Exception as e:  # noqa: BLE001 (the package works without the tool)
            if os.environ.get("BULKMAP_REQUIRE_TOOL"):
                raise
            sys.stderr.write("bulkmap: the bulkmap command was not built (%s); the Python "
                             "package works without it (apt-get install libuv1-dev, then "
                             "pip install again, to have it)\n" % e)

    def build_tool(self):
        uv_cflags = pkg_config("--cflags", "libuv")
        uv_libs = [a[2:] for a in pkg_config("--libs-only-l", "libuv")] or ["uv"]
        uv_dirs = [a[2:] for a in pkg_config("--libs-only-L", "libuv")]
        incs = (["include", "tools/bulkmap", "tools/bench", "src/uv"]
                + [a[2:] for a in uv_cflags if a.startswith("-I")] + include_dirs)
        macros = [("_GNU_SOURCE", ""), ("_FILE_OFFSET_BITS", "64"),
                  ("BULKMAP_DOCDIR_REL", '"../share/doc/bulkmap"')]
        objects = self.compiler.compile(tool_sources, output_dir=os.path.join(self.build_temp, "tool"),
                                        macros=macros, include_dirs=incs,
                                        extra_postargs=["-std=c11"], debug=self.debug)
        out_dir = os.path.join(os.path.dirname(self.get_ext_fullpath("bulkmap._bulkmap")), "_bin")
        os.makedirs(out_dir, exist_ok=True)
        # The helper library (build_clib's bulkmap_core) is on self.library_dirs already.
        self.compiler.link_executable(
            objects, "bulkmap", output_dir=out_dir,
            libraries=["bulkmap_core", *uv_libs, *json_libs, "pthread", "rt", "m"],
            library_dirs=[*self.library_dirs, *uv_dirs, *json_dirs], debug=self.debug)
        tool = os.path.join(out_dir, "bulkmap")
        os.chmod(tool, 0o755)
        # It runs here, or the package does not carry it.
        subprocess.run([tool, "--version"], check=True, capture_output=True)


# Build products under build/ (ignored by git), not beside the sources.
os.makedirs("build/setuptools", exist_ok=True)

setup(
    version=version(),
    options={"build": {"build_base": "build/setuptools"},
             "egg_info": {"egg_base": "build/setuptools"}},
    cmdclass={"build_ext": build_ext_and_tool},
    libraries=[("bulkmap_core", {
        "sources": lib_sources,
        "include_dirs": ["include", "src", *include_dirs],
        "macros": [("BULKMAP_BUILDING", None), ("_FILE_OFFSET_BITS", "64")],
        "cflags": c11,
    })],
    ext_modules=[Extension(
        "bulkmap._bulkmap",
        sources=sorted(glob.glob("python/src/*.c")),
        depends=sorted(glob.glob("python/src/*.h")),
        include_dirs=["include"],
        libraries=["bulkmap_core", *json_libs, "pthread", "rt"],
        library_dirs=json_dirs,
        extra_compile_args=c11,
        # The library's symbols stay inside the module, as CMake's build keeps them.
        extra_link_args=["-Wl,--exclude-libs,ALL"],
    )],
)
