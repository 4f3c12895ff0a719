"""README tables of the speed benchmarks and the 3D ones (``attribution``, ``single_pass``,
``evaluation``, ``featurevis``, ``occlusion_paths``, ``side_by_side``, ``volumes``,
``volumes_known_answer``, ``volumes_cam_layers``). Timings carry the load averages stored beside them."""

from __future__ import annotations

from _tables import num, shape, table


def _load(row: dict, key: str = "load") -> str:
    return f"{row[key][0]:.1f}" if row.get(key) else ""


def attribution_table(payload: dict) -> list[str]:
    """Every method against Captum (default and best batching) and the floor, per reference model."""
    n = payload["numbers"]
    env = n["environment"]
    lines = [(f"Times in CPU seconds of the computing thread (`{env['clock']}`), torch {env['torch']}, Captum "
             f"{env['captum']}, {env['threads']} thread(s); load average {num(env['load_average_start'][0], 1)} at the "
             f"start, {num(env['load_average_end'][0], 1)} at the end."), ""]
    for case in n["results"]:
        rows = []
        for r in case["rows"]:
            settings = " ".join(f"{k}={v}" for k, v in r["options"].items() if k != "seed") or "defaults"
            rows.append((r["method"], settings, f"{r['forward_evaluations']}f+{r['gradient_evaluations']}g",
                         num(r["medlens_s"]), num(r.get("captum_default_s")), num(r.get("captum_best_s")),
                         num(r["floor_s"]), num(r["medlens_over_floor"], 2), num(r.get("speedup_vs_captum_default"), 2),
                         num(r.get("speedup_vs_captum_best"), 2), num(r["medlens_peak_mib"], 0),
                         num(r.get("captum_default_peak_mib"), 0)))
        lines += [f"**{case['model']}**", "", *table(
            ("method", "settings", "evals", "medlens s", "captum def", "captum best", "floor s", "x floor", "vs def",
             "vs best", "peak MiB", "captum def MiB"), rows), ""]
    return lines + ["Bars:", "", *(f"* {bar}" for bar in n["bars"])]


def single_pass_table(payload: dict) -> list[str]:
    """Medians of interleaved runs: medlens against Captum, and the floor."""
    n = payload["numbers"]
    rows = [(r["method"], num(1e3 * r["medlens_s"], 2), num(1e3 * r["captum_s"], 2), num(r["ratio"]),
             num(r["medlens_s"] / r["floor_s"]), ("PASS" if r["pass"] else "MISS") + f" (<= {n['bar']})")
            for r in n["rows"]]
    return [(f"Medians of {n['repeats']} interleaved runs; floor (forward+backward of the bare model, with parameter "
            f"gradients) {num(1e3 * n['floor_s'], 2)} ms."), "",
            *table(("method", "medlens ms", "Captum ms", "medlens / Captum", "medlens / floor", "bar"), rows)]


def evaluation_table(payload: dict) -> list[str]:
    """The batched deletion metric against the per-image loop."""
    n = payload["numbers"]
    return [(f"Deletion, {n['images']} images {n['size']}x{n['size']}, {n['steps']} steps = {n['model_evaluations']} "
            f"model evaluations: medlens (batched, engine chunks) {num(n['medlens_s'])} s, per-image loop "
            f"{num(n['per_image_loop_s'])} s (loop / medlens = {num(n['speedup'], 2)}); largest AUC difference "
            f"{n['max_auc_difference']:.1e}.")]


def featurevis_table(payload: dict) -> list[str]:
    """Render steps per second beside the floor (one forward+backward pass of the batch)."""
    n = payload["numbers"]
    rows = [(f"{n['batch']} channels of `{r['layer']}`", r["param"], r["transforms"], num(1 / r["step_s"], 1),
             num(1e3 * r["step_s"], 2), f"{100 * r['model_pass_share']:.0f}%") for r in n["rows"]]
    return [(f"Best of {n['repeats']} runs of {n['steps']} steps; floor {num(1 / n['floor_s'], 1)} passes/s "
            f"({num(1e3 * n['floor_s'], 2)} ms)."), "",
            *table(("objective", "parameterisation", "transforms", "steps/s", "ms per step", "model pass share"), rows)]


def occlusion_paths_table(payload: dict) -> list[str]:
    """Occlusion's default path (cost-chosen) against the plain path, same windows."""
    rows = []
    for r in payload["numbers"]["rows"]:
        by = r.get("measured_by")
        rows.append((r["label"], shape(r["input"][2:]), r["windows"], r["incremental_chain_chosen"],
                     num(r["default_s"], 2), num(r["plain_s"], 2), num(r["ratio_default_over_plain"], 2),
                     f"{r['max_abs_diff']:.0e}", _load(r) + (f" (another run: `{by['command']}`)" if by else "")))
    return table(("model", "input", "windows", "incremental chosen", "default s", "plain s", "default / plain",
                  "max map difference", "load (1 min)"), rows)


def volumes_table(payload: dict) -> list[str]:
    """Sliding-window tasks on a whole volume: time, window evaluations, peak RSS, against the floor."""
    n = payload["numbers"]
    rows = [(task, num(r.get("seconds"), 1), r.get("window_evaluations", ""), num(r.get("peak_rss_mib"), 0),
             num(r.get("over_forward_backward_floor"), 2) if "over_forward_backward_floor" in r else "",
             _load(r), r.get("note", "")) for task, r in n["tasks"].items()]
    return [(f"Volume {shape(n['size'])}, roi {n['roi']}^3, overlap {n['overlap']}, {n['blend']} blending, occlusion "
            f"window {n['occlusion_window']}."), "",
            *table(("task", "seconds", "window evaluations", "peak RSS MiB", "x forward+backward floor",
                    "load (1 min)", "note"), rows)]


def known_answer_table(payload: dict) -> list[str]:
    """Share of each map's top 1% inside the known region, with evaluations, time and settings."""
    rows = []
    for r in payload["numbers"]["rows"]:
        settings = ", ".join(f"{k}={v.strip(chr(39))}" for k, v in (r.get("settings") or {}).items()
                             if k in ("layer", "windows", "finest_window", "n_masks", "n_samples", "n_steps") or v != "None")
        rows.append((r["model"], r["size"], r["method"], num(r.get("budget_scale"), 2), num(r.get("top1_inside")),
                     r.get("evaluations", ""), num(r.get("seconds"), 1),
                     num(r["seconds"] / (r["evaluations"] * r["forward_s"]), 2) if r.get("forward_s") else "",
                     num(r.get("forward_s"), 2), settings,
                     _load(r) if isinstance(r.get("load"), list) else "", "" if "top1_inside" in r else r.get("note", "")))
    return table(("model", "size", "method", "budget x", "top 1% inside", "evaluations", "seconds",
                  "seconds / (evaluations x forward)", "forward s", "settings",
                  "load (1 min)", "note"), rows)


def openmp_wait_table(payload: dict) -> list[str]:
    """Per wait policy and number of extra busy processes: median (best, worst) milliseconds per input
    of each pass, the policies taking turns pass by pass."""
    rows = []
    for r in payload["numbers"]["rows"]:
        cells = [f"{num(1e3 * t['median_s'], 1)} ({num(1e3 * t['best_s'], 1)}-{num(1e3 * t['worst_s'], 0)})"
                 for t in r["passes"].values()]
        rows.append((r["policy"], r["load_processes"], *cells, f"{r['load_before'][0]:.1f}-{r['load_after'][0]:.1f}"))
    names = list(payload["numbers"]["rows"][0]["passes"])
    return table(("policy", "extra busy processes", *(f"{n}: median (best-worst) ms per input" for n in names),
                  "load (1 min)"), rows)


def cam_layers_table(payload: dict) -> list[str]:
    """Grad-CAM at every stage: the layer's grid, the top 1% inside the region, the region left positive."""
    n = payload["numbers"]
    rows = [(r["model"], f"`{r['layer']}`", shape(r["grid"]), num(r["top1_inside"]), num(r["region_positive"]))
            for r in n["rows"]]
    return [f"Input {n['size']}^3, region {n['region']:.3f} of each side.", "",
            *table(("model", "layer", "grid", "top 1% inside the region", "region where the map is positive"), rows)]


def integrated_gradcam_table(payload: dict) -> list[str]:
    """Integrated Grad-CAM beside Grad-CAM at each layer: the top 1% inside the region."""
    n = payload["numbers"]
    rows = [(r["model"], f"`{r['layer']}`", shape(r["grid"]), num(r["gradcam_top1_inside"]),
             num(r["integrated_gradcam_top1_inside"]), num(r["seconds_all_layers"], 1), r["passes"], _load(r))
            for r in n["rows"]]
    return [f"Input {n['size']}^3, region {n['region']:.3f} of each side, {n['steps']} path steps (reference 0).", "",
            *table(("model", "layer", "grid", "Grad-CAM top 1% inside", "Integrated Grad-CAM top 1% inside",
                    "seconds (all layers)", "forward+backward passes", "load (1 min)"), rows)]


def side_by_side_table(payload: dict) -> list[str]:
    """Two arms of one comparison (chunks side by side or one at a time; the chain's reach), quiet and loaded."""
    rows = [(r["comparison"].replace("_", " "), r["model"], r["task"], r["load_processes"],
             f"{r['arms'][0]} {num(r['seconds'][r['arms'][0]], 2)} s", f"{r['arms'][1]} {num(r['seconds'][r['arms'][1]], 2)} s",
             num(r["ratio"], 2), f"{r['max_abs_diff']:.0e}", _load(r)) for r in payload["numbers"]["rows"]]
    return table(("comparison", "model", "task", "busy processes", "first arm (best)", "second arm (best)",
                  "first / second", "max map difference", "load (1 min)"), rows)


TABLES = {
    "side_by_side": side_by_side_table,
    "attribution": attribution_table,
    "single_pass": single_pass_table,
    "evaluation": evaluation_table,
    "featurevis": featurevis_table,
    "occlusion_paths": occlusion_paths_table,
    "occlusion_paths_quiet": occlusion_paths_table,
    "occlusion_paths_check": occlusion_paths_table,
    "volumes_small_check": volumes_table,
    "volumes_full_gradient_check": volumes_table,
    "volumes_full_gradcam_check": volumes_table,
    "volumes_full_occlusion_check": volumes_table,
    "volumes_full_occlusion_ig_check": volumes_table,
    "volumes_vs_third_party": volumes_table,
    "volumes_known_answer_defaults": known_answer_table,
    "volumes_known_answer_defaults_64_quiet": known_answer_table,
    "openmp_wait": openmp_wait_table,
    "volumes_known_answer_budget_curve": known_answer_table,
    "volumes_known_answer_densenet_quiet": known_answer_table,
    "volumes_known_answer_occlusion_inc": known_answer_table,
    "volumes_known_answer_occlusion_inc_scales": known_answer_table,
    "volumes_known_answer_occlusion_inc_box045_s35": known_answer_table,
    "volumes_known_answer_cam_occlusion": known_answer_table,
    "volumes_known_answer_occlusion_budgets": known_answer_table,
    "volumes_known_answer_occlusion_2t": known_answer_table,
    "volumes_known_answer_occlusion_1t": known_answer_table,
    "volumes_integrated_gradcam": integrated_gradcam_table,
    "volumes_cam_layers": cam_layers_table,
}
