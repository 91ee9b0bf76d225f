"""The table of the last benchmark run, written into bench/README.md between two markers."""

from __future__ import annotations

from typing import Any

from bench import diag_cost, inside_page, long_run
from bench.stats import Figure
from harness.server import ROOT

README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- results: begin -->", "<!-- results: end -->"


def _fig(d: dict[str, Any], digits: int = 0, unit: str = "") -> str:
    return Figure(d["samples"]).fmt(digits, unit)


Row = tuple[str, str, str, str]  # (target, measured: median (min–max), limit, verdict)


def verdict(ok: bool | None) -> str:
    """A row's last column: pass, FAIL, or nothing (a row without a target)."""
    return "" if ok is None else "pass" if ok else "**FAIL**"


class Rows(list[Row]):
    """A table's rows, each added with whether it met its target."""

    def add(self, target: str, measured: str, limit: str, ok: bool | None) -> None:
        self.append((target, measured, limit, verdict(ok)))


def rows(results: dict[str, Any]) -> list[Row]:
    """(target, measured: median (min–max), limit, verdict)."""
    out = Rows()

    if "throughput" in results:
        for batch, limit in (("32", 2.0), ("512", 1.0), ("4096", 1.0)):
            r = results["throughput"]["result"].get(batch)
            if r:
                out.add(
                    f"1. server / lecture loop, batch {batch}",
                    f"{_fig(r['ratio'], 2)}× ({_fig(r['server_steps_per_s'])} vs {_fig(r['lecture_steps_per_s'])}"
                    f" steps/s; viewer gaps {r['viewer_gaps']})",
                    f"≥ {limit:.1f}×",
                    r["ratio"]["median"] >= limit and r["viewer_gaps"] == 0,
                )
    if "evaluation" in results:
        for block, limit in (("3", 50), ("8", 3)):
            r = results["evaluation"]["result"][f"block_size_{block}"]
            out.add(
                f"2. exact train+dev evaluation vs naive, block_size {block}",
                f"{_fig(r['speedup'], 1)}× faster ({_fig(r['exact_ms'], 1, ' ms')} vs {_fig(r['naive_ms'], 0, ' ms')});"
                f" rel. diff {r['max_relative_difference']:.0e}",
                f"≥ {limit}×, ≤ 1e-5",
                r["speedup"]["median"] >= limit and r["max_relative_difference"] <= 1e-5,
            )
    if "viewers" in results:
        r = results["viewers"]["result"]
        out.add(
            f"3. throughput with {r['viewers']} viewers / 1 viewer ({r['seconds']:.0f} s windows)",
            f"{_fig(r['ratio'], 2)}× ({_fig(r['many_viewers_steps_per_s'])} vs {_fig(r['one_viewer_steps_per_s'])}"
            f" steps/s); viewers with gaps: {r['viewers_with_gaps']}",
            "≥ 0.85×, no gaps",
            r["ratio"]["median"] >= 0.85 and r["viewers_with_gaps"] == 0,
        )
    if "stalled_viewer" in results:
        r = results["stalled_viewer"]["result"]
        out.add(
            f"4. a viewer stalled {r['seconds']:.0f} s: server RSS growth",
            f"peak {_fig(r['rss_growth_mb'], 1, ' MB')}, at the end {_fig(r['rss_growth_at_end_mb'], 1, ' MB')}"
            f" (without it: peak {_fig(r['rss_growth_without_stalled_viewer_mb'], 1, ' MB')})",
            "< 20 MB",
            max(r["rss_growth_mb"]["samples"]) < 20,
        )
        out.add(
            "4. … trainer with / without the stalled viewer",
            f"{_fig(r['ratio'], 2)}×; other viewer's gaps: {r['other_viewer_gaps']};"
            f" lagged + fresh snapshot on reading again: {r['resynced']}/{r['stalls']}",
            "≥ 0.95×, snapshot",
            r["ratio"]["median"] >= 0.95 and r["other_viewer_gaps"] == 0 and r["resynced"] == r["stalls"],
        )
    if "latency" in results:
        r = results["latency"]["result"]
        for key, name, limit in (("health_ms", "GET /api/health", 20), ("set_round_trip_ms", "`set` → `hparams`", 50)):
            v = r[key]
            out.add(
                f"5. {name} while training, p99 of {len(v['samples'])}",
                f"{v['p99']:.1f} ms (median {v['p50']:.1f}, max {v['max']:.1f})",
                f"< {limit} ms",
                v["p99"] < limit,
            )
    if "latency_big" in results:
        v = results["latency_big"]["result"]["set_round_trip_ms"]
        out.add(
            f"issue 10.9: `set` → `hparams`, block 16, n_embd 64, n_hidden 1,024, p99 of {len(v['samples'])}",
            f"{v['p99']:.1f} ms (median {v['p50']:.1f}, max {v['max']:.1f})",
            "< 500 ms",
            v["p99"] < 500,
        )
    if "busy" in results:
        r = results["busy"]["result"]
        for key, what, limit in (("busy", "one CPU-bound process beside", 0.8), ("idle", "nothing beside", None)):
            out.add(
                f"issue 10.1: examples/s at batch 256 / 255, {what}",
                f"{_fig(r[key]['ratio'], 2)}× ({_fig(r[key]['examples_per_s_256'])} vs"
                f" {_fig(r[key]['examples_per_s_255'])} examples/s)",
                "" if limit is None else f"≥ {limit}×",
                None if limit is None else r[key]["ratio"]["median"] >= limit,
            )
    if "noise_scale" in results:
        r = results["noise_scale"]["result"]
        for name in ("lecture", "adam"):
            run = r[name]["runs"][-1]
            out.add(
                f"issue 10.10: noise-scale estimates, {name} run, {r['steps']:,} steps, eval every 1,000",
                f"{run['with_estimate']} of {run['evaluations']} evaluations; longest stretch without:"
                f" {r[name]['longest_gap']}",
                "≤ 2 without",
                r[name]["longest_gap"] <= 2,
            )
    if "long_run" in results:
        r = results["long_run"]["result"]
        steps = r["reached"]["step"]
        for what, measured, limit, ok in long_run.verdicts(r):
            out.add(f"6. after {steps:,} steps: {what}", measured, limit, ok and r["reached"]["finished"])
    out += hours_rows(results)
    out += toolbox_rows(results)
    out += optimizer_rows(results)
    if "startup" in results:
        r = results["startup"]["result"]["seconds"]
        out.add("7. `python -m backend` → /api/health", _fig(r, 2, " s"), "≤ 4 s", max(r["samples"]) <= 4)
        if "api_seconds" in results["startup"]["result"]:
            a = results["startup"]["result"]["api_seconds"]
            out.add("7. … → the API ready (torch loaded, default run created)", _fig(a, 2, " s"), "", None)
    out += issue8_rows(results)
    out += issue11_rows(results)
    out += compare_rows(results)
    for target, measured, limit, ok in (*diag_cost.rows(results), *inside_page.rows(results)):  # issue 23
        out.add(target, measured, limit, ok)
    return out


def hours_rows(results: dict[str, Any]) -> list[Row]:
    """A run of hours in the store (bench/hours.py): its snapshot."""
    if "hours" not in results:
        return []
    r = results["hours"]["result"]
    lim = r["limits"]
    ok = r["snapshot_bytes"] <= lim["snapshot_bytes"] and r["built_ms"]["median"] <= lim["snapshot_ms"]
    return [
        (
            f"6. a run of {r['steps']:,} steps in the store (hours of training): its snapshot",
            f"{r['snapshot_bytes']:,} B, {r['snapshot_evals']:,} of its {r['evaluations']:,} evaluations; built from"
            f" the store {_fig(r['built_ms'], 0, ' ms')}, again {_fig(r['again_ms'], 0, ' ms')};"
            f" server RSS {_fig(r['server_rss_mb'], 0, ' MB')}",
            f"≤ {lim['snapshot_bytes']:,} B, built ≤ {lim['snapshot_ms']:.0f} ms",
            verdict(ok),
        )
    ]


def compare_rows(results: dict[str, Any]) -> list[Row]:
    """Issue 11: the compare view of 20 runs of 200,000 steps, two of them training."""
    if "compare" not in results:
        return []
    r = results["compare"]["result"]
    lim = r["limits"]
    n, steps = r["runs_in_view"], r["stored_steps"]
    if "open" not in r:  # results from before the first picture (one figure: plotly's chart)
        return []
    rows = []
    ways = {
        "click": "from the single view (its Compare, in the page)",
        "address": "by its address, the page visited before",
        "fresh": "by its address in a fresh browser (nothing cached)",
    }
    for way, how in ways.items():
        if way not in r["open"]:
            continue
        f = r["open"][way]
        for key, what in (("first_s", "every line on screen"), ("interactive_s", "plotly's chart (hover, zoom)")):
            rows.append(
                (
                    f"11. compare view, {n} runs ({steps:,} steps, 2 training), opened {how} → {what}",
                    f"{_fig(f[key], 2, ' s')}; load average {_fig(f['load_average'], 1)}",
                    f"≤ {lim['open_s']:.0f} s",
                    verdict(f[key]["median"] <= lim["open_s"]),
                )
            )
    return [
        *rows,
        (
            "11. … a redraw while 2 train (traces built + Plotly.react)",
            f"median {r['redraw_ms']['median']:.1f} ms, p95 {r['redraw_ms']['p95']:.1f} ms, {r['redraws_per_s']:.1f}/s",
            f"≤ {lim['redraw_ms']:.0f} ms",
            verdict(r["redraw_ms"]["median"] <= lim["redraw_ms"]),
        ),
    ]


def issue8_rows(results: dict[str, Any]) -> list[Row]:
    """Issue 8: runs in worker processes, side by side, in a store."""
    out = Rows()

    if "worker" in results:
        r = results["worker"]["result"]
        out.add(
            f"8.1 a run's worker / lecture loop, batch {r['batch']}",
            f"{_fig(r['worker_vs_lecture'], 2)}× ({_fig(r['worker_steps_per_s'])} vs {_fig(r['lecture_steps_per_s'])}"
            f" steps/s; vs the lecture loop on 1 thread {_fig(r['worker_vs_lecture_1_thread'], 2)}×)",
            "≥ 2.0×",
            r["worker_vs_lecture"]["median"] >= 2.0,
        )
        out.add(
            f"8.1 a run's worker / the Trainer in a thread (before issue 8), batch {r['batch']}",
            f"{_fig(r['worker_vs_in_thread'], 2)}× ({_fig(r['worker_steps_per_s'])} vs"
            f" {_fig(r['in_thread_steps_per_s'])} steps/s; viewer gaps {r['viewer_gaps']})",
            "≥ 0.95×",
            r["worker_vs_in_thread"]["median"] >= 0.95 and r["viewer_gaps"] == 0,
        )
        if "worker_vs_in_thread_per_cpu_s" in r:
            out.add(
                "8.1 … the same per CPU second (worker + server / the in-thread process)",
                f"{_fig(r['worker_vs_in_thread_per_cpu_s'], 2)}× ({_fig(r['worker_steps_per_cpu_s'])} vs"
                f" {_fig(r['in_thread_steps_per_cpu_s'])} steps per CPU second)",
                "",
                None,
            )
    if "two_runs" in results:
        r = results["two_runs"]["result"]
        out.add(
            f"8.2 two runs at once / one run ({r['cores']} cores)",
            f"{_fig(r['ratio'], 2)}× ({_fig(r['two_runs_steps_per_s'])} vs {_fig(r['one_run_steps_per_s'])} steps/s)"
            + (
                f"; cores used by everything else: {_fig(r['others_cores']['together'], 2)} (two),"
                f" {_fig(r['others_cores']['alone'], 2)} (one)"
                if "others_cores" in r
                else ""
            ),
            "≥ 1.7×",
            r["ratio"]["median"] >= 1.7 and r["viewer_gaps"] == 0,
        )
    if "store_cost" in results:
        r = results["store_cost"]["result"]
        out.add(
            "8.3 store on / store off (bench-only switch)",
            f"{_fig(r['ratio'], 2)}× ({_fig(r['store_on_steps_per_s'])} vs {_fig(r['store_off_steps_per_s'])} steps/s)",
            "≥ 0.95×",
            r["ratio"]["median"] >= 0.95 and r["viewer_gaps"] == 0,
        )
    if "create" in results:
        r = results["create"]["result"]
        for key, what, limit in (
            ("post_ms", "`POST /api/runs` answered", 300),
            ("first_steps_ms", "… its first `steps`", 1000),
        ):
            v = r[key]
            out.add(
                f"8.4 {what}, p95 of {r['samples']} (warm)",
                f"{v['p95']:,.0f} ms (median {v['median']:,.0f}, max {v['max']:,.0f})",
                f"≤ {limit:,} ms",
                v["p95"] <= limit,
            )
    if "disk" in results:
        r = results["disk"]["result"]
        full = r["steps"] == 200_000 and r["eval_every"] == 1000
        out.add(
            f"8.5 a {r['steps']:,}-step run on disk (eval every {r['eval_every']:,})",
            f"home grew {r['home_growth_bytes']:,} B; the store's account {r['run_bytes']:,} B, of which"
            f" {r['checkpoint_files']} checkpoint files {r['checkpoint_files_bytes']:,} B",
            f"≤ {r['limit_bytes']:,} B",
            max(r["home_growth_bytes"], r["run_bytes"]) <= r["limit_bytes"] if full else None,
        )
    if "restart" in results:
        r = results["restart"]["result"]
        lim = r["limits"]
        for part in ("first", "more"):
            m = r[part]
            n = f"{m['runs']:,} runs"
            one = m["one_run_home"]
            out.add(
                f"8.6 restart, {n}: `/api/health` (a home with 1 run)",
                f"{_fig(m['health_s'], 2, ' s')} ({_fig(one['health_s'], 2, ' s')})",
                "≤ 1 s",
                m["health_s"]["median"] <= lim["health_s"],
            )
            out.add(
                f"8.6 … {n}: the API ready (a home with 1 run)",
                f"{_fig(m['api_ready_s'], 2, ' s')} ({_fig(one['api_ready_s'], 2, ' s')}); the server's CPU by then"
                f" {_fig(m['cpu_at_ready_s'], 2, ' s')} ({_fig(one['cpu_at_ready_s'], 2, ' s')})",
                "≤ 4 s",
                m["api_ready_s"]["median"] <= lim["api_ready_s"],
            )
            out.add(
                f"8.6 … {n}: `GET /api/runs` (100 runs)",
                f"{m['list_ms']['median']:.1f} ms (p95 {m['list_ms']['p95']:.1f}, max {m['list_ms']['max']:.1f});"
                f" CPU {_fig(m['list_cpu_ms'], 1, ' ms')}; limit=1000: {m['list_1000_ms']['median']:.0f} ms",
                "≤ 100 ms",
                m["list_ms"]["median"] <= lim["list_ms"],
            )
            snap = m["snapshot_ms"]
            out.add(
                f"8.6 … {n}: a stored run's snapshot (cold, {len(snap['samples'])} runs)",
                f"{snap['median']:.0f} ms (p95 {snap['p95']:.0f}, max {snap['max']:.0f});"
                f" CPU {_fig(m['snapshot_cpu_ms'], 0, ' ms')}",
                "≤ 150 ms",
                m["snapshot_ms"]["median"] <= lim["snapshot_ms"],
            )
            peak = max(m["server_peak_mb"]["samples"])
            out.add(
                f"8.6 … {n}: server RSS (peak) after listing, snapshots, samples",
                f"{peak:,.0f} MB (at the end {_fig(m['server_rss_mb'], 0, ' MB')})",
                "< 400 MB" if part == "more" else "",
                peak < lim["rss_mb"] if part == "more" else None,
            )
    return out


def issue11_rows(results: dict[str, Any]) -> list[Row]:
    """Issue 11: a sweep's runs side by side; the overview stream's cost to the trainers."""
    out = Rows()

    if "sweep" in results:
        r = results["sweep"]["result"]
        full = r["runs"] == 6 and r["steps"] == 20_000
        out.add(
            f"11 a sweep of {r['runs']} lr × {r['steps']:,} steps: ideal / actual time ({r['cores']} cores)",
            f"{_fig(r['ratio'], 2)}× ({_fig(r['sweep_seconds'], 1, ' s')} vs ideal {_fig(r['ideal_seconds'], 1, ' s')};"
            f" one run alone {_fig(r['alone_steps_per_s'])} steps/s; slots full {_fig(r['slots_full'], 2)},"
            f" a run's steps/s in the sweep / alone {_fig(r['run_in_sweep_vs_alone'], 2)};"
            f" cores used by the server's processes {_fig(r['sweep_server_cores'], 2)}"
            f" (alone {_fig(r['alone_server_cores'], 2)}), by everything else {_fig(r['sweep_others_cores'], 2)}"
            f" (alone {_fig(r['alone_others_cores'], 2)}); steps per CPU second, sweep / alone"
            f" {_fig(r['steps_per_cpu_s_sweep_vs_alone'], 2)})",
            "≥ 0.7×",
            r["ratio"]["median"] >= 0.7 if full else None,
        )
        found = ", ".join(f"{x['lr']:g}: {x['dev_loss']:.4f}" for x in r["results"] if x["dev_loss"] is not None)
        best = r["best"]
        out.add(
            "11 … what it finds: dev loss at the last step, by lr",
            f"{found}; best lr {best['lr']:g}, dev {best['dev_loss']:.4f}" if best else found,
            "",
            None,
        )
    if "overview_cost" in results:
        r = results["overview_cost"]["result"]
        full = r["stored_runs"] >= 100
        out.add(
            f"11 2 runs training, {r['stored_runs']} stored: with / without {r['subscribers']} `/ws/runs` subscribers",
            f"{_fig(r['ratio'], 3)}× ({_fig(r['with_steps_per_s'])} vs {_fig(r['without_steps_per_s'])} steps/s;"
            f" cores used by the server's processes {_fig(r['server_cores_with'], 2)} vs"
            f" {_fig(r['server_cores_without'], 2)} (the server process alone"
            f" {_fig(r['server_process_cores_with'], 3)} vs {_fig(r['server_process_cores_without'], 3)}),"
            f" by the subscribers {_fig(r['subscribers_cores_with'], 3)},"
            f" by everything else {_fig(r['others_cores_with'], 2)} vs {_fig(r['others_cores_without'], 2)};"
            f" {_fig(r['subscriber_rows_per_s'], 1)} run rows/s to each)",
            "≥ 0.95×",
            r["ratio"]["median"] >= 0.95 if full else None,
        )
    return out


def load_lines(results: dict[str, Any]) -> list[str]:
    """How busy the shared machine was during each part: load average over 1 minute, at its start and end."""
    loads = [
        f"{k} {v['load_average']['before'][0]:.1f}→{v['load_average']['after'][0]:.1f}"
        for k, v in results.items()
        if isinstance(v, dict) and "load_average" in v
    ]
    return (
        ["", f"Load average (1 min) at each part's start → end, {len(loads)} parts: {'; '.join(loads)}."]
        if loads
        else []
    )


def toolbox_rows(results: dict[str, Any]) -> list[Row]:
    """The toolbox: LR finder, noise scale, init."""
    out = Rows()
    if "toolbox" not in results:
        return out
    d, sc = results["toolbox"]["result"]["default"], results["toolbox"]["result"]["scaled"]
    ok = 0.02 <= d["fresh_suggestion"]["median"] <= 0.5
    out.append(
        (
            "toolbox: LR finder suggestion, fresh default run",
            f"{_fig(d['fresh_suggestion'], 4)} in {_fig(d['fresh_seconds'], 2, ' s')}",
            "0.02–0.5",
            verdict(ok),
        )
    )
    out.append(
        (
            "toolbox: LR finder suggestion at step 10,000",
            f"{_fig(d['mid_run_suggestion'], 4)} in {_fig(d['mid_run_seconds'], 2, ' s')}",
            "",
            "",
        )
    )
    noise = ", ".join(f"{int(k):,}: {_fig(v, 0)}" for k, v in d["noise_scale"].items())
    out.append(("toolbox: gradient noise scale at step", noise, "", ""))
    out.append(
        (
            'toolbox: init "scaled", the lecture\'s 200k schedule',
            f"first-step loss {_fig(sc['first_step_loss'], 4)}; dev {_fig(sc['dev_loss'], 4)},"
            f" train {_fig(sc['train_loss'], 4)}",
            "first within 0.2 of ln 27",
            verdict(abs(sc["first_step_loss"]["median"] - 3.2958) < 0.2),
        )
    )
    return out


def optimizer_rows(results: dict[str, Any]) -> list[Row]:
    """Issue 11.5: the fused optimizers against plain SGD, in the trainer."""
    out = Rows()
    if "optimizers" not in results:
        return out
    for batch, t in results["optimizers"]["result"]["trainer"].items():
        for kind in ("momentum", "adam"):
            fused, before = t[f"{kind} (fused)"], t[f"{kind} (torch.optim)"]
            target = batch == "32"
            ok = fused["wall_ratio_to_sgd"]["median"] >= 0.8
            out.append(
                (
                    f"11.5 {kind} / SGD steps/s in the trainer, batch {batch}",
                    f"{_fig(fused['wall_ratio_to_sgd'], 2)}× (per CPU second {_fig(fused['cpu_ratio_to_sgd'], 2)}×;"
                    f" through torch.optim, as before: {_fig(before['wall_ratio_to_sgd'], 2)}×)",
                    "≥ 0.8×" if target else "",
                    verdict(ok if target else None),
                )
            )
    return out


def lever_rows(results: dict[str, Any]) -> list[str]:
    if "levers" not in results:
        return []
    lines = []
    for batch, table in results["levers"]["result"].items():
        lines += [
            f"\nBatch {batch}, in-process, steps/s (ratio to the lecture loop):\n",
            "| variant | steps/s | ratio |",
        ]
        lines.append("|---|---|---|")
        for name, r in table.items():
            lines.append(f"| {name} | {_fig(r['steps_per_s'])} | {_fig(r['ratio_to_lecture'], 2)}× |")
    return lines


def write_readme(results: dict[str, Any]) -> None:
    m = results.get("machine", {})
    dates = sorted({v["date"][:10] for k, v in results.items() if isinstance(v, dict) and "date" in v})
    table = [
        BEGIN,
        f"Last run: {', '.join(dates)}; {m.get('cpu', '?')}, {m.get('cores', '?')} cores,"
        f" Python {m.get('python', '?')}, torch {m.get('torch', '?')}"
        f" (default threads {m.get('torch_threads_default', '?')}).",
        "",
        "| target | measured: median (min–max) | limit | |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows(results)),
        *lever_rows(results),
        *load_lines(results),
        END,
    ]
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    README.write_text(head + "\n".join(table) + tail)
