"""bench/flood.py - logins from one source (127.0.0.1) while another source
(127.0.0.2) floods the server with unauthenticated connections: 4 threads
connecting as fast as they can, the first 1000 held open and silent (each
holds a pre-auth slot for the whole grace time). Same flood for warren and
for the OpenSSH baseline, one after the other."""
import statistics
import subprocess
import time

from conftest import Flood

FLOODER = "127.0.0.2"


def login_under_flood(argv, port, logins):
    """(successful logins, their median ms, p90 ms, flood connections made)"""
    with Flood(FLOODER, port) as flood:
        deadline = time.time() + 10
        while flood.attempts < 2000 and time.time() < deadline:
            time.sleep(0.05)
        times = []
        for _ in range(logins):
            t0 = time.perf_counter()
            r = subprocess.run(argv + ["true"], stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=60)
            if r.returncode == 0:
                times.append((time.perf_counter() - t0) * 1000)
    attempts = flood.attempts
    times.sort()
    med = statistics.median(times) if times else float("nan")
    p90 = times[int(len(times) * 0.9)] if times else float("nan")
    return len(times), med, p90, attempts


def section(w, b, logins):
    lines = ["## Unauthenticated flood", "",
             f"{logins} logins (`ssh true`, ConnectTimeout 10 s) from 127.0.0.1 while 127.0.0.2 "
             "floods: 4 threads connecting as fast as they can, the first 1000 connections held "
             "open and silent. The baseline sshd runs with this bench's `MaxStartups 1000` "
             "(OpenSSH 9.2 has no PerSourcePenalties).", "",
             "| measure | warren | OpenSSH + bwrap |", "| --- | ---: | ---: |",
             f"| logins that succeeded | {w[0]} / {logins} | {b[0]} / {logins} |",
             f"| login median, ms | {w[1]:.1f} | {b[1]:.1f} |",
             f"| login p90, ms | {w[2]:.1f} | {b[2]:.1f} |",
             f"| flood connections during the run | {w[3]} | {b[3]} |", "",
             f"Goal: a legitimate client gets in within 2 s during the flood: warren "
             f"{'met' if w[0] == logins and w[2] < 2000 else 'NOT met'} "
             f"(p90 {w[2]:.0f} ms, {w[0]}/{logins} in)."]
    return "\n".join(lines) + "\n"
