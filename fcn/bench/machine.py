"""The machine a figure was measured on: its CPU, how loaded it was, what the hypervisor took."""

import os


def cpu_name():
    """'<model name> (<n> cores)' from /proc/cpuinfo, the cores this process may use."""
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            line = next((li for li in f if li.startswith("model name")), "")
        name = line.split(":", 1)[1].strip() or name
    except (OSError, IndexError):
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{name} ({cores} cores)"


def cpu_times():
    """(steal, total) jiffies of all CPUs from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    return fields[7] if len(fields) > 7 else 0, sum(fields[:8])


def machine_note(before, after):
    """How busy the machine was: the load average and the share stolen by the hypervisor."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    note = f"machine: load average {load:.2f} over the last minute"
    if before and after and after[1] > before[1]:
        steal = (after[0] - before[0]) / (after[1] - before[1])
        note += f", {100 * steal:.0f}% of CPU time stolen by the hypervisor during the timings"
    return note + " (noisy figures? run again when both are low)"
