"""The PEP 517 backend of pyproject.toml: setuptools.build_meta, found where the system has
it. Inside pip's isolated build environment the system's site directories are hidden, and
with no network pip cannot fetch setuptools into it; this backend adds the base
interpreter's own site directories (Debian: /usr/lib/python3/dist-packages, where
python3-setuptools and python3-wheel are) after everything else on sys.path, and then asks
for nothing more to be installed."""
import os
import sys
import sysconfig


def _system_site_dirs():
    dirs = []
    base = getattr(sys, "base_prefix", sys.prefix)
    for scheme in ("deb_system", "posix_local", "posix_prefix", "nt"):
        if scheme not in sysconfig.get_scheme_names():
            continue
        for key in ("purelib", "platlib"):
            try:
                d = sysconfig.get_path(key, scheme, vars={"base": base, "platbase": base,
                                                          "installed_base": base,
                                                          "installed_platbase": base})
            except KeyError:
                continue
            if d and os.path.isdir(d) and d not in dirs:
                dirs.append(d)
    return dirs


try:
    import setuptools  # noqa: F401
except ImportError:
    sys.path.extend(d for d in _system_site_dirs() if d not in sys.path)
    try:
        import setuptools  # noqa: F401
    except ImportError as e:
        raise ImportError("bulkmap's build needs setuptools: apt-get install python3-setuptools "
                          "python3-wheel (Debian), or pip install setuptools wheel") from e

from setuptools import build_meta as _meta  # noqa: E402
from setuptools.build_meta import *  # noqa: F401,F403,E402


def _wheel_from(site):
    """Puts only the `wheel` package of `site` (pure Python) on sys.path, with its
    dist-info (setuptools finds bdist_wheel through its entry points), through a temporary
    directory of links: nothing else of another interpreter's site directory is seen."""
    import glob
    import tempfile
    # Debian ships it with an .egg-info, pip with a .dist-info: either carries the entry
    # points.
    infos = (glob.glob(os.path.join(site, "wheel-*.dist-info"))
             + glob.glob(os.path.join(site, "wheel-*.egg-info")))
    if not os.path.isdir(os.path.join(site, "wheel")) or not infos:
        return False
    d = tempfile.mkdtemp(prefix="bulkmap-build-wheel-")
    for src in [os.path.join(site, "wheel"), infos[0]]:
        os.symlink(src, os.path.join(d, os.path.basename(src)))
    sys.path.append(d)
    return True


def _have_wheel():
    try:
        import wheel  # noqa: F401
        return True
    except ImportError:
        pass
    # The interpreter's own system site directories, then Debian's python3-wheel (a
    # python3 first on PATH, pyenv's, has no wheel of its own in a new venv).
    for site in _system_site_dirs() + ["/usr/lib/python3/dist-packages"]:
        if _wheel_from(site):
            try:
                import wheel  # noqa: F401,F811
                return True
            except ImportError:
                continue
    return False


def get_requires_for_build_wheel(config_settings=None):
    # setuptools asks for "wheel"; the system's is used when there is one (no download).
    if _have_wheel():
        return []
    return _meta.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    if _have_wheel():
        return []
    return _meta.get_requires_for_build_editable(config_settings)


# setuptools before 70.1 needs `wheel` for bdist_wheel in every wheel hook (metadata too).
_have_wheel()
