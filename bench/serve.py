"""
Start a server process the way the benchmark needs it.

C{python -m bench.serve --gc-file F -- twistd -n pzh ...} runs the hub
exactly as C{twistd} would (same plugin, same options, same reactor), after
two preparations that every server of the benchmark gets alike:

 - the soft limit on open files is raised to the hard limit, so that 5,000
   device links fit;
 - C{SIGUSR2} runs a full garbage collection and then writes the process's
   VmRSS and the number of tracked objects to the file named by
   C{--gc-file}, so that the benchmark can read memory after a collection;
   then it asks the C allocator to give its free memory back
   (C{malloc_trim}) and adds the VmRSS after that, which tells memory in
   use from memory the allocator merely keeps.  The benchmark reads the
   main figure itself, before that, from C{/proc/PID/status}.
   (C{SIGUSR1} is left alone: C{twistd} uses it to rotate its log.)

The bare Twisted server (L{bench.bareserver}) calls L{prepare} itself.
"""

import ctypes
import ctypes.util
import gc
import json
import os
import resource
import signal
import sys


def raiseFileLimit() -> int:
    """
    Raise the soft C{RLIMIT_NOFILE} to the hard limit; return the new soft
    limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 65536)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def vmRSSKiB(pid="self") -> int:
    """
    The resident set size of a process, in KiB, from C{/proc/PID/status}.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def prepare(gcFile) -> None:
    """
    Raise the file limit and install the C{SIGUSR2} collector.
    """
    raiseFileLimit()
    if not gcFile:
        return
    state = {"seq": 0}
    try:
        state["trim"] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        pass

    def collect(signum, frame):
        state["seq"] += 1
        gc.collect()
        report = {
            "seq": state["seq"],
            "rss_kib": vmRSSKiB(),
            "objects": len(gc.get_objects()),
        }
        if state.get("trim"):
            state["trim"](0)
            report["rss_after_trim_kib"] = vmRSSKiB()
        tmp = gcFile + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f)
        os.replace(tmp, gcFile)

    signal.signal(signal.SIGUSR2, collect)


def main(argv) -> None:
    gcFile = None
    if argv[:1] == ["--gc-file"]:
        gcFile, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if argv[:1] != ["twistd"]:
        raise SystemExit("usage: python -m bench.serve [--gc-file F] -- twistd ARGS...")
    prepare(gcFile)
    from twisted.scripts.twistd import run

    sys.argv = argv
    run()


if __name__ == "__main__":
    main(sys.argv[1:])
