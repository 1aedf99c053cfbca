#!/usr/bin/env python3
"""Triage of a fuzz finding: read the sanitizer report of one replayed input and say whose bug it
is.  Prints one line "hdf5|nde SIGNATURE".

A finding is HDF5's own (libhdf5 1.10.8 from Debian, which nde cannot change) when the frame that
faulted is inside libhdf5 and, for a bad access to heap memory, that memory was also allocated
inside libhdf5: then HDF5 misread its own buffers while decoding a corrupt file.  Everything else
is nde's: a fault in nde's code, or HDF5 writing into or reading from a buffer nde allocated (nde
passed the wrong size), undefined behaviour, a leak, a timeout.

    triage.py REPORT_FILE
"""
import re
import sys

RUNTIME = re.compile(r"__interceptor_|__asan_|__sanitizer|__lsan|__ubsan|libclang_rt|"
                     r"/libsanitizer/|asan_malloc|\bmalloc\b|\bcalloc\b|\brealloc\b|\bfree\b|"
                     r"compiler-rt|fuzzer::|"
                     # libc's string routines: the fault belongs to their caller
                     r"__mem(?:cpy|move|set|cmp)_|__str[a-z]*_(?:avx|sse|evex)|/sysdeps/")
FRAME = re.compile(r"^\s*#\d+ 0x[0-9a-f]+ (?:in (\S+) )?\(?([^()\s]*)")


def frames(lines):
    """The frames of one stack, each (function or '', module), without the sanitizer runtime."""
    out = []
    for line in lines:
        m = FRAME.match(line)
        if not m:
            if out:
                break
            continue
        if RUNTIME.search(line):
            continue
        func = m.group(1) or ""
        paren = re.search(r"\(([^()]*\+0x[0-9a-f]+)\)", line)
        where = paren.group(1).split("/")[-1] if paren else line.strip()
        module = "libhdf5" if "libhdf5" in where else where
        out.append((func, module, where))
    return out


def main():
    text = open(sys.argv[1], errors="replace").read().splitlines()
    err = next((i for i, l in enumerate(text) if "ERROR: " in l or "runtime error:" in l), None)
    if err is None:
        print("nde no sanitizer report (timeout or out-of-memory)")
        return
    head = text[err]
    if "runtime error:" in head or "LeakSanitizer" in head:
        print("nde " + head.strip()[:200])
        return
    stack = frames(text[err + 1:])
    alloc_at = next((i for i, l in enumerate(text) if "allocated by thread" in l), None)
    alloc = frames(text[alloc_at + 1:]) if alloc_at is not None else []
    top = stack[0] if stack else ("", "?", "?")
    kind = re.sub(r".*AddressSanitizer: ", "", head).split(" on ")[0].strip()
    sig = "%s at %s" % (kind, top[0] or top[2])
    in_hdf5 = top[1] == "libhdf5" and (not alloc or alloc[0][1] == "libhdf5")
    # Name the HDF5 function when the faulting frame is an unnamed (static) one.
    if in_hdf5 and not top[0]:
        named = next((f for f, m, _ in stack if m == "libhdf5" and f), "")
        sig = "%s in HDF5 (below %s: %s)" % (kind, named, top[2])
    print(("hdf5 " if in_hdf5 else "nde ") + sig)


if __name__ == "__main__":
    main()
