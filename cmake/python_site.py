"""Prints where the interpreter running this puts packages for an install under PREFIX, as
its own sysconfig says (cmake --install of the bulkmap Python package).
    python3 cmake/python_site.py PREFIX
Debian's python3: /usr -> /usr/lib/python3/dist-packages (the deb_system scheme, as a
Debian package installs), /usr/local -> /usr/local/lib/python3.11/dist-packages (its default
posix_local scheme, on its sys.path); a venv or another interpreter: its default scheme with
PREFIX as the base (lib/python3.X/site-packages)."""
import os
import sys
import sysconfig

prefix = os.path.abspath(sys.argv[1])
schemes = sysconfig.get_scheme_names()
if hasattr(sysconfig, "get_default_scheme"):
    scheme = sysconfig.get_default_scheme()
else:  # Python < 3.10
    scheme = sysconfig._get_default_scheme()
in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
if not in_venv and prefix == os.path.abspath(sys.base_prefix) and "deb_system" in schemes:
    scheme = "deb_system"
base = "@BULKMAP@"
path = sysconfig.get_path("platlib", scheme, vars={"base": base, "platbase": base,
                                                   "installed_base": base,
                                                   "installed_platbase": base})
rel = os.path.relpath(path, base)
# Debian's posix_local scheme is {base}/local/...: its base is the interpreter's prefix
# (/usr), the install prefix /usr/local. Under another prefix the same layout applies.
if scheme == "posix_local" and rel.startswith("local" + os.sep):
    rel = rel[len("local" + os.sep):]
print(os.path.join(prefix, rel))
