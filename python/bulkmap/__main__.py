"""The `bulkmap` command of a pip install (`bulkmap ...` or `python -m bulkmap ...`): runs the
tool, the C program tools/bulkmap built with the wheel by setup.py and carried in the
package (bulkmap/_bin/bulkmap), with the arguments given. The process becomes the tool
(exec), so its exit status, signals and standard streams are the tool's own.

Where the package was built without the tool (a CMake build tree, `cmake --install`, which
installs the tool in bin/ itself), BULKMAP_TOOL names one, else a `bulkmap` on PATH that is
not this script is run."""
import os
import shutil
import sys


def tool_path():
    """The tool's path, or None."""
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bin", "bulkmap")
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    env = os.environ.get("BULKMAP_TOOL")
    if env and os.path.isfile(env) and os.access(env, os.X_OK):
        return env
    me = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else None
    for d in os.environ.get("PATH", os.defpath).split(os.pathsep):
        c = shutil.which("bulkmap", path=d) if d else None
        if c and os.path.realpath(c) != me and not _is_script(c):
            return c
    return None


def _is_script(path):
    """True for a Python entry-point script (this command itself, in another venv)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def main(argv=None):
    args = sys.argv[1:] if argv is None else list(argv)
    path = tool_path()
    if path is None:
        sys.stderr.write("bulkmap: the bulkmap tool is not installed with this package "
                         "(pip install builds it when libuv is there: apt-get install "
                         "libuv1-dev, then pip install again; or set BULKMAP_TOOL)\n")
        return 127
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(path, ["bulkmap", *args])


if __name__ == "__main__":
    sys.exit(main())
