"""Where the slow bets of `croupier bench live` fall, next to what each thread was doing.

    python3 scripts/live_trace.py sample SERVER_PID CLIENT_PID > run.cpu
        Every 100 ms until both processes end: the wall clock, then each thread name's CPU
        milliseconds since the last line (from /proc/PID/task/TID/stat; 10 ms ticks), with
        `S:` for the server's threads and `C:` for the client's; `X:iowait` and `X:steal`
        are the whole machine's (summed over its CPUs).
    python3 scripts/live_trace.py report run.log run.lat run.cpu [--slow-ms 50]
        Per 100 ms of betting: bets due then, their mean and max latency, and the threads
        that used 20 ms of CPU or more in it. run.log is the bench's output (its
        `betting started at unix_ms=` line), run.lat its `--latency-log`.

scripts/live-trace.sh runs both around one benchmark.
"""

import os
import sys
import time

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
STEP_S = 0.1


def thread_cpu(pid, tag):
    """{tag + thread name: CPU ticks} summed over the process's threads of that name."""
    ticks = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = int(fields[11]) + int(fields[12])  # utime + stime
        ticks[(tid, tag + name)] = used
    return ticks


# /proc/stat's columns after "cpu": user nice system idle iowait irq softirq steal
SYSTEM_COLUMNS = {"iowait": 4, "steal": 7}


def system_ticks():
    """{"X:iowait", "X:steal": ticks} of the whole machine: time no thread of ours ran
    because the disk or the hypervisor held it, which no thread's CPU shows."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return {(None, "X:" + name): int(fields[column]) for name, column in SYSTEM_COLUMNS.items()}


def sample(server, client):
    before = {}
    while True:
        now = time.time()
        current = {}
        for pid, tag in ((server, "S:"), (client, "C:")):
            ticks = thread_cpu(pid, tag)
            if ticks is not None:
                current.update(ticks)
        if not current:
            return
        current.update(system_ticks())
        used = {}
        for (tid, name), ticks in current.items():
            delta = ticks - before.get((tid, name), ticks)
            used[name] = used.get(name, 0) + delta
        before = current
        cells = " ".join(f"{n}={int(v * TICK_MS)}" for n, v in sorted(used.items()) if v)
        print(f"{now:.2f} {cells}", flush=True)
        time.sleep(max(0.0, STEP_S - (time.time() - now)))


def report(log, latencies, cpu, slow_ms):
    start = None
    with open(log) as f:
        for line in f:
            if "unix_ms=" in line:
                start = int(line.split("unix_ms=")[1].split()[0]) / 1000
    if start is None:
        sys.exit(f"{log} has no 'betting started at unix_ms=' line")
    buckets = {}
    slow = 0
    total = 0
    with open(latencies) as f:
        for line in f:
            due_ms, latency_us = (int(x) for x in line.split())
            count, worst, summed = buckets.get(due_ms // 100, (0, 0, 0))
            buckets[due_ms // 100] = (count + 1, max(worst, latency_us), summed + latency_us)
            total += 1
            slow += latency_us > slow_ms * 1000
    last_bucket = max(buckets, default=0)
    with open(cpu) as f:
        for line in f:
            parts = line.split()
            bucket = int((float(parts[0]) - start) * 10) - 1  # a line covers the 100 ms before
            if bucket < 0 or bucket > last_bucket:
                continue
            count, worst, summed = buckets.get(bucket, (0, 0, 0))
            used = {k: int(v) for k, v in (p.split("=") for p in parts[1:])}
            busy = " ".join(
                f"{k}={v}" for k, v in sorted(used.items(), key=lambda kv: -kv[1]) if v >= 20
            )
            mean = summed / max(count, 1) / 1000
            print(f"{bucket * 100:6d} ms  bets={count:5d}  mean={mean:7.1f}  max={worst / 1000:7.1f} ms  | {busy}")
    print(f"bets {total}, over {slow_ms} ms: {slow} (1% is {total // 100})")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "sample":
        sample(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3], sys.argv[4], 50)
    elif len(sys.argv) == 7 and sys.argv[1] == "report" and sys.argv[5] == "--slow-ms":
        report(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
