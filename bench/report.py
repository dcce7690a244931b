#!/usr/bin/env python3
"""bench/report.py: turns bench/run.sh's runs.jsonl into the table (stdout and
bench.md), bench.json and bench.png (Mpps against batch size).

    bench/report.py RUNS.jsonl OUTDIR [--setup TEXT] [--netmapd PATH]

Every figure is the median over the rounds. A netmapd figure's ratio is the
median over the rounds of (netmapd in that round / the mean of that round's
raw runs of the same group and frame size): the raw baseline runs first and
last in its group, so drift within a round hits both sides.
Columns: Mpps (TX: frames that reached B, counted by B's rx_packets; RX and
pipe: frames the receiver got); Gbit/s (frame bytes without FCS); us per sync (wall time /
syncs: one poll() or ioctl() round trip of the client, batch included; for
the sync group, the round trip itself); CPU s per million frames, client +
daemon (= CPU cores per Mpps); the daemon's share of that; the daemon's peak
RSS during the run (MiB: the region's resident pages count, and AF_XDP pins
the whole buffer area as its UMEM); TX: the share of the frames the sender
handed over that reached B; ratio to the raw baseline.
"""
import argparse
import json
import statistics
import sys
import time
from collections import defaultdict

BATCH_ORDER = ["1", "8", "64", "256", "512", "ring"]
GROUPS = ["xdp-tx", "xdp-rx", "pkt-tx", "pkt-rx", "pipe", "pipe-mon", "vale", "sync", "xdp-rxpath", "host-pkt", "host-xdp"]
LABEL = {
    "xdp-tx": "AF_XDP TX", "xdp-rx": "AF_XDP RX", "pkt-tx": "AF_PACKET TX",
    "pkt-rx": "AF_PACKET RX", "pipe": "pipe", "pipe-mon": "pipe + /r copy monitor", "vale": "VALE port to port", "sync": "empty sync",
    "host-pkt": "host path, AF_PACKET", "host-xdp": "host path, AF_XDP",
    "xdp-rxpath": "AF_XDP RX, stable slot buffers (default)",
}
RAW_LABEL = {
    "xdp-tx": "raw AF_XDP TX", "xdp-rx": "raw AF_XDP RX",
    "pkt-tx": "raw TPACKET_V2 TX ring", "pkt-rx": "raw TPACKET_V3 RX ring",
    "sync": "no-op FUSE ioctl (floor)", "pipe-mon": "pipe at 512, no monitor", "vale": "pipe, batch 512 (same run)",
    "xdp-rxpath": "AF_XDP RX, buffers swapped into slots (--xdp-rx-swap)",
    "host-pkt": "plain kernel path (UDP echo)", "host-xdp": "plain kernel path (UDP echo)",
}
# (group, size, batch, comparison, threshold, what)
TARGETS = [
    ("xdp-tx", 60, "512", "ratio>=", 0.9, "netmap TX on AF_XDP >= 0.9x raw AF_XDP TX"),
    ("xdp-rx", 60, "512", "ratio>=", 0.9, "netmap RX on AF_XDP >= 0.9x raw AF_XDP RX"),
    ("pkt-tx", 60, "512", "ratio>=", 1.0, "AF_PACKET backend TX >= 1.0x raw TX ring"),
    ("pkt-rx", 60, "512", "ratio>=", 0.9, "AF_PACKET backend RX >= 0.9x raw TPACKET_V3"),
    ("sync", 0, "-", "ratio<=", 1.5, "empty sync round trip <= 1.5x FUSE no-op floor"),
    ("pipe", 60, "512", "mpps>=", 10.0, "pipe between two processes >= 10 Mpps at 512"),
    ("pipe-mon", 60, "512", "ratio>=", 0.7, "pipe at 512 with a /r copy monitor >= 0.7x without"),
    ("xdp-rxpath", 60, "512", "ratio>=", 0.9, "stable AF_XDP RX buffers cost <= 10% of the default's rate"),
    ("vale", 60, "512", "ratio>=", 0.5, "VALE port to port >= 0.5x the pipe at batch 512"),
    ("host-pkt", 60, "-", "ratio>=", 0.5, "host path through host rings (AF_PACKET) >= 0.5x the plain kernel path"),
    ("host-xdp", 60, "-", "ratio>=", 0.5, "host path through host rings (AF_XDP) >= 0.5x the plain kernel path"),
]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("outdir")
    ap.add_argument("--setup", default="")
    ap.add_argument("--netmapd", default="")
    a = ap.parse_args()
    runs = [json.loads(l) for l in open(a.runs) if l.strip()]
    if not runs:
        print("report: no runs recorded", file=sys.stderr)
        return 1

    def moved(r):
        # TX: what reached B (its rx_packets), not what the sender handed
        # over: with threaded NAPI a veth drops what its peer's queue cannot
        # take, after the sender counted it as sent.
        return r["peer_rx"] if r.get("peer_rx") is not None else r["frames"]

    def rate(r):
        return moved(r) / r["seconds"] if r["seconds"] > 0 else None

    def gbps(r):
        share = moved(r) / r["frames"] if r["frames"] else 0
        return r["bytes"] * share * 8 / r["seconds"] / 1e9 if r["seconds"] > 0 else None

    # Raw baselines per (group, size, round).
    raw = defaultdict(list)
    for r in runs:
        if r["kind"] in ("raw", "floor"):
            raw[(r["group"], r["size"], r["round"])].append(r)

    def base_value(group, size, rnd):
        rs = raw.get((group, size, rnd), [])
        if not rs:
            return None
        if group == "sync":
            vals = [r["seconds"] / r["syncs"] * 1e6 for r in rs if r["syncs"]]
        else:
            vals = [rate(r) for r in rs if rate(r)]
        return statistics.mean(vals) if vals else None

    rows = []
    cells = defaultdict(list)
    for r in runs:
        if r["kind"] == "netmapd":
            cells[(r["group"], r["size"], r["batch"])].append(r)
    baselines = []
    for (g, s) in sorted({(k[0], k[1]) for k in raw}, key=lambda k: (GROUPS.index(k[0]), k[1])):
        rs = [r for k, v in raw.items() if k[0] == g and k[1] == s for r in v]
        entry = {"group": g, "size": s, "what": RAW_LABEL.get(g, g), "runs": len(rs)}
        if g == "sync":
            entry["us"] = med([r["seconds"] / r["syncs"] * 1e6 for r in rs if r["syncs"]])
        else:
            entry["mpps"] = med([x / 1e6 for x in map(rate, rs) if x is not None])
            entry["gbps"] = med([x for x in map(gbps, rs) if x is not None])
            entry["cpu_per_mframe"] = med([r["cpu_client"] / (moved(r) / 1e6) for r in rs if moved(r)])
            entry["delivered"] = med([r["peer_rx"] / r["frames"] for r in rs
                                      if r.get("peer_rx") is not None and r["frames"]])
        baselines.append(entry)

    def key(k):
        return (GROUPS.index(k[0]), k[1], BATCH_ORDER.index(k[2]) if k[2] in BATCH_ORDER else -1)

    for k in sorted(cells, key=key):
        g, s, b = k
        rs = cells[k]
        row = {"group": g, "size": s, "batch": b, "runs": len(rs)}
        if g == "sync":
            row["us"] = med([r["seconds"] / r["syncs"] * 1e6 for r in rs if r["syncs"]])
            ratios = []
            for r in rs:
                bv = base_value(g, s, r["round"])
                if bv and r["syncs"]:
                    ratios.append(r["seconds"] / r["syncs"] * 1e6 / bv)
            row["ratio"] = med(ratios)
            row["cpu_per_mframe"] = None
        else:
            row["mpps"] = med([x / 1e6 for x in map(rate, rs) if x is not None])
            row["gbps"] = med([x for x in map(gbps, rs) if x is not None])
            row["us"] = med([r["seconds"] / r["syncs"] * 1e6 for r in rs if r["syncs"]])
            row["cpu_per_mframe"] = med([(r["cpu_client"] + r["cpu_daemon"]) / (moved(r) / 1e6)
                                         for r in rs if moved(r)])
            row["daemon_cpu_per_mframe"] = med([r["cpu_daemon"] / (moved(r) / 1e6) for r in rs if moved(r)])
            peers = [r["peer_rx"] / r["frames"] for r in rs if r.get("peer_rx") is not None and r["frames"]]
            row["delivered"] = med(peers)
            ratios = []
            for r in rs:
                bv = base_value(g, s, r["round"])
                if bv and rate(r):
                    ratios.append(rate(r) / bv)
            row["ratio"] = med(ratios)
        row["daemon_cpu_s"] = med([r["cpu_daemon"] for r in rs])
        row["daemon_peak_mib"] = med([r["daemon_hwm_kib"] / 1024 for r in rs])
        rows.append(row)

    verdicts = []
    for g, s, b, cmp, th, what in TARGETS:
        row = next((r for r in rows if r["group"] == g and r["size"] == s and r["batch"] == b), None)
        if row is None:
            verdicts.append({"target": what, "value": None, "met": None})
            continue
        if cmp == "mpps>=":
            v = row["mpps"]
            met = v is not None and v >= th
            shown = f"{v:.2f} Mpps" if v is not None else "n/a"
        else:
            v = row["ratio"]
            met = v is not None and (v >= th if cmp == "ratio>=" else v <= th)
            shown = f"{v:.2f}x" if v is not None else "n/a"
        verdicts.append({"target": what, "value": v, "shown": shown, "met": met})

    def f(v, fmt):
        return "" if v is None else fmt.format(v)

    lines = []
    lines.append(f"Set-up: {a.setup}")
    lines.append(f"Rounds: {max(r['round'] for r in runs)}; figures are medians; ratios per round against the "
                 "raw baseline of the same group and frame size.")
    lines.append("")
    lines.append("Baselines (no netmapd):")
    lines.append("")
    lines.append("| baseline | frame B | Mpps | Gbit/s | us | CPU s/Mframe | delivered |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for e in baselines:
        lines.append(f"| {e['what']} | {e['size'] or ''} | {f(e.get('mpps'), '{:.3f}') or ('' if e['group'] == 'sync' else 'no result')} "
                     f"| {f(e.get('gbps'), '{:.2f}')} "
                     f"| {f(e.get('us'), '{:.1f}')} | {f(e.get('cpu_per_mframe'), '{:.2f}')} "
                     f"| {f(e.get('delivered'), '{:.0%}')} |")
    lines.append("")
    lines.append("netmapd:")
    lines.append("")
    lines.append("| path | frame B | batch | Mpps | Gbit/s | us/sync | CPU s/Mframe | daemon CPU s/Mframe "
                 "| daemon peak MiB | delivered | x raw |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        lines.append(f"| {LABEL[r['group']]} | {r['size'] or ''} | {r['batch']} "
                     f"| {f(r.get('mpps'), '{:.3f}') or ('' if r['group'] == 'sync' else 'no result (run log)')} "
                     f"| {f(r.get('gbps'), '{:.2f}')} | {f(r.get('us'), '{:.1f}')} "
                     f"| {f(r.get('cpu_per_mframe'), '{:.2f}')} | {f(r.get('daemon_cpu_per_mframe'), '{:.2f}')} "
                     f"| {f(r.get('daemon_peak_mib'), '{:.1f}')} | {f(r.get('delivered'), '{:.0%}')} "
                     f"| {f(r.get('ratio'), '{:.2f}')} |")
    lines.append("")
    lines.append("Targets (60-byte frames, batch 512):")
    lines.append("")
    for v in verdicts:
        mark = "n/a" if v["met"] is None else ("met" if v["met"] else "NOT met")
        lines.append(f"- {v['target']}: {v.get('shown', 'n/a')} ({mark})")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(f"{a.outdir}/bench.md", "w") as fh:
        fh.write(text)
    with open(f"{a.outdir}/bench.json", "w") as fh:
        json.dump({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "setup": a.setup,
                   "netmapd": a.netmapd, "baselines": baselines, "rows": rows, "targets": verdicts}, fh, indent=1)

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: python3-matplotlib missing, no chart", file=sys.stderr)
        return 0
    sizes = sorted({r["size"] for r in rows if r["group"] != "sync"})
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4.5), squeeze=False)
    colors = {"xdp-tx": "C0", "xdp-rx": "C1", "pkt-tx": "C2", "pkt-rx": "C3", "pipe": "C4", "vale": "C5"}
    for ax, s in zip(axes[0], sizes):
        for g in ["xdp-tx", "xdp-rx", "pkt-tx", "pkt-rx", "pipe", "vale"]:
            pts = [(BATCH_ORDER.index(r["batch"]), r["mpps"]) for r in rows
                   if r["group"] == g and r["size"] == s and r["batch"] in BATCH_ORDER and r.get("mpps")]
            if not pts:
                continue
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[g], label=f"netmapd {LABEL[g]}")
            base = next((e for e in baselines if e["group"] == g and e["size"] == s), None)
            if base and base.get("mpps"):
                ax.axhline(base["mpps"], color=colors[g], linestyle="--", linewidth=1,
                           label=f"{RAW_LABEL[g]}")
        ax.set_xticks(range(len(BATCH_ORDER)))
        ax.set_xticklabels(BATCH_ORDER)
        ax.set_xlabel("batch per sync (frames)")
        ax.set_ylabel("Mpps")
        ax.set_yscale("log")
        ax.set_title(f"{s}-byte frames (dashed: raw baselines)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{a.outdir}/bench.png", dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
