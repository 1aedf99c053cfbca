"""Print where `meson install` should put the package for this interpreter and install prefix: a
directory of one of the interpreter's install schemes under the prefix that is on its sys.path
(prefix /usr: /usr/lib/python3/dist-packages; a virtual environment: its site-packages), else
its own site directory when that lies under the prefix (Debian's python3 and prefix /usr/local:
/usr/local/lib/python3.X/dist-packages, which it searches, where meson's Debian scheme gives
/usr/local/lib/python3/dist-packages, which it does not).  Prints nothing when there is none:
the build then uses meson's default and says so.

    python3 install_dir.py PREFIX
"""
import os
import sys
import sysconfig


def main(prefix):
    prefix = os.path.normpath(prefix)
    on_path = {os.path.normpath(p) for p in sys.path if p}
    candidates = []
    for scheme in sysconfig.get_scheme_names():
        try:
            candidates.append(sysconfig.get_path("platlib", scheme,
                                                 vars={"base": prefix, "platbase": prefix}))
        except (KeyError, ValueError):
            pass
    candidates.append(sysconfig.get_path("platlib"))
    for c in candidates:
        c = os.path.normpath(c)
        if c.startswith(prefix + os.sep) and c in on_path:
            print(c)
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
