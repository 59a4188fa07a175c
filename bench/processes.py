"""
Starting and stopping the processes a benchmark measures, shared by
C{python -m bench}, C{python -m bench attack} and C{python -m bench.portal}:
every process L{spawn} starts is listed in L{started} until L{stop}, so one
L{stopAll} cleans up whatever part of the run failed.
"""

import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")

#: The processes L{spawn} started and L{stop} has not stopped yet.
started = []


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(name: str, argv: list, logPath: str, stdin=subprocess.DEVNULL) -> subprocess.Popen:
    logFile = open(logPath, "ab")
    proc = subprocess.Popen(
        argv, cwd=TOP, stdin=stdin, stdout=logFile, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    logFile.close()
    proc.benchName = name
    started.append(proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    if proc.stdin:
        try:
            proc.stdin.close()
        except OSError:
            pass
    if proc in started:
        started.remove(proc)


def stopAll() -> None:
    for proc in list(started):
        try:
            stop(proc, 5)
        except Exception:
            pass


def waitForPort(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.benchName} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.benchName} is not listening on {port} after {timeout} s")


def cpuTicks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")
