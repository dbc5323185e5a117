"""`spatialrl report`: the HTML and Markdown report of a run directory.

The fixture run directory is built in ``tmp_path`` by ``make_run_dir`` with realistic files: a
GRPO log history of 40 steps (every key the trainer logs, a NaN near-miss value and the
trainer's final summary line), an SFT control log, ``metrics.json`` with five question types
and three seeds, a checkpoint sweep in the format ``spatialrl eval run`` writes, and the GRPO
job's ``spatialrl_config.yaml``.

The browser test drives a real headless Chromium through the Chrome DevTools Protocol over
``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-separated JSON messages): standard
library only, no websocket package and no browser download. JS evaluation is needed to check
that every image decoded (``naturalWidth > 0``), which ``--dump-dom`` cannot do; the protocol
also reports console errors, CSP violations and every network request the page makes.
It is skipped, with the reason, only when no ``chromium`` binary is found.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from spatialrl import report
from spatialrl.report import ReportError, write_report

TYPES = ["abs_distance", "object_count", "compare_choice", "rel_direction", "grounding_bbox"]
ROOT = Path(__file__).resolve().parents[1]


def _scores(base: float, slope: float) -> dict:
    per_type = {t: round(min(100.0, max(0.0, base + slope * i)), 2) for i, t in enumerate(TYPES)}
    return {"overall": round(sum(per_type.values()) / len(per_type), 4), "per_type": per_type}


def make_metrics(seed: int = 0) -> dict:
    sft, control, rl = _scores(40 + seed, 5), _scores(42 + seed, 5), _scores(47 + seed, 5)
    rl["per_type"]["rel_direction"] = round(sft["per_type"]["rel_direction"] - 7.5, 2)  # a regression
    rl["overall"] = round(sum(rl["per_type"].values()) / len(TYPES), 4)
    baseline = {"overall": 22.5, "per_type": {t: 100.0 / (i + 2) for i, t in enumerate(TYPES)}}
    return {"sft": sft, "control": control, "rl": rl, "baseline": baseline, "seed": seed, "seconds": 1234.5}


def make_log(steps: int = 40) -> list[dict]:
    rows = []
    for s in range(1, steps + 1):
        t = s / steps
        k = 2 + 48 / (1 + math.exp(-10 * (t - 0.5)))  # the config's schedule: sigmoid, k 2 -> 50
        acc = 0.2 + 0.5 * t
        rows.append({
            "loss": 0.01 * math.sin(s), "grad_norm": 0.5, "learning_rate": 1e-5 * (1 - t),
            "num_tokens": 1000.0 * s, "completions/mean_length": 40 - 10 * t,
            "rewards/accuracy/mean": acc, "rewards/accuracy/std": 0.2,
            "rewards/format/mean": min(1.0, 0.5 + t), "rewards/format/std": 0.1,
            "rewards/semantic/mean": 0.4 + 0.2 * t, "rewards/semantic/std": 0.15,
            "rewards/iou/mean": 0.1 + 0.3 * t, "rewards/iou/std": 0.1,
            "reward": 0.9 * acc + 0.1 * min(1.0, 0.5 + t), "reward_std": 0.2, "frac_reward_zero_std": 0.5 - 0.3 * t,
            "sharpness/k": k, "consistency/pairs": 4.0, "consistency/delta": 0.1 * math.cos(s / 3),
            "consistency/abs_delta": abs(0.1 * math.cos(s / 3)) + 0.02,
            "adv/mean": 0.0, "adv/abs_mean": 0.6 + 0.1 * t, "adv/variance": 0.4 + 0.3 * t,
            "adv/zero_std_group_frac": 0.5 - 0.3 * t, "adv/near_miss_use": math.nan if s == 7 else 0.3 + 0.5 * t,
            "adv/unscorable_frac": 0.0, "kl": 0.001 * s, "entropy": 2.0 - t, "epoch": s / steps, "step": s,
            # spatialrl.train.mechanisms: the same completions under the alternatives
            "mechanisms/zero_var_frac_snra": 0.2 - 0.1 * t, "mechanisms/zero_var_frac_binary": 0.55 - 0.05 * t,
            "mechanisms/near_miss_use_ap_grpo": math.nan if s == 7 else 0.8 - 0.1 * t,
            "mechanisms/near_miss_use_grpo": math.nan if s == 7 else 0.9,
            "mechanisms/adv_variance_ap_grpo": 0.3 + 0.2 * t, "mechanisms/adv_variance_grpo": 0.6,
            "mechanisms/abs_delta": abs(0.1 * math.cos(s / 3)) + 0.02,
        })
    rows.append({"train_runtime": 123.4, "train_samples_per_second": 1.0, "train_loss": 0.001,
                 "epoch": 1.0, "step": steps})
    return rows


def make_sweep() -> dict:
    models = [{"name": f"checkpoint-{s}", "path": f"/runs/x/grpo/checkpoint-{s}", "step": s,
               "overall": 40.0 + s / 4, "per_type": {}} for s in (10, 20, 30, 40)]
    models.append({"name": "final", "path": "/runs/x/grpo/final", "step": None, "overall": 49.0, "per_type": {}})
    best = max(models, key=lambda m: m["overall"])
    return {"benchmark": "world", "prompt_variant": "default", "overall": {m["name"]: m["overall"] for m in models},
            "models": models, "best": {"name": best["name"], "overall": best["overall"]}}


CONFIG = """job: grpo
# sharpness schedule k(t)
sharpness_kind: sigmoid
k_min: 2.0
k_max: 50.0
tau: 0.5
steepness: 10.0
snra_operator: sigmoid
e_max: 5.3
max_steps: 40
"""


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_run_dir(root: Path, *, seeds: bool = True) -> Path:
    run = root / "run"
    run.mkdir(parents=True)
    metrics = make_metrics(0)
    if seeds:
        metrics["seeds"] = [make_metrics(s) for s in (0, 1, 2)]
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _jsonl(run / "grpo" / "log_history.jsonl", make_log())
    _jsonl(run / "control" / "log_history.jsonl",
           [{"loss": 2.0 * math.exp(-s / 10), "learning_rate": 1e-5, "epoch": s / 40, "step": s} for s in range(1, 41)]
           + [{"train_runtime": 50.0, "train_loss": 1.0, "step": 40}])
    (run / "sweep.json").write_text(json.dumps(make_sweep(), indent=2))
    (run / "grpo" / "spatialrl_config.yaml").write_text(CONFIG)
    return run


def cli(argv: list[str]) -> int:
    """``spatialrl report ...`` through the real CLI once registered, else through the module's parser."""
    from spatialrl.cli import COMMANDS, main

    if any(words == "report" for words, _ in COMMANDS):
        return main(["report", *argv])
    return report.main(argv)


IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _summary_values(page: str) -> dict[str, float]:
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'data-key="([a-z_]+)" data-value="([^"]+)"', page)}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    run = make_run_dir(tmp_path_factory.mktemp("report"))
    assert cli([str(run)]) == 0
    return run


def test_report_files_and_images(built):
    page = (built / "report.html").read_text()
    images = IMG.findall(page)
    assert len(images) == page.count("<img") >= 10
    for data in images:
        png = base64.b64decode(data, validate=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(io.BytesIO(png)) as im:
            im.verify()
    # nothing external: no http(s) URLs, no src/href other than data: URIs and in-page anchors
    assert not re.search(r"https?://", page)
    assert all(v.startswith(("data:", "#")) for v in re.findall(r'(?:src|href)="([^"]*)"', page))
    md = (built / "report.md").read_text()
    refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(refs) == len(images)
    for ref in refs:
        assert not ref.startswith("/") and (built / ref).is_file()
        with Image.open(built / ref) as im:
            assert im.format == "PNG" and im.width > 0
    assert sorted(p.name for p in (built / "report_files").iterdir()) == sorted(Path(r).name for r in refs)


def test_summary_numbers_equal_metrics(built):
    metrics = json.loads((built / "metrics.json").read_text())
    page = (built / "report.html").read_text()
    values = _summary_values(page)
    for key in ("sft", "control", "rl", "baseline"):
        assert values[key] == metrics[key]["overall"]
        assert f"{metrics[key]['overall']:.1f} %" in page
    assert values["rl_minus_sft"] == pytest.approx(metrics["rl"]["overall"] - metrics["sft"]["overall"])
    assert values["rl_minus_control"] == pytest.approx(metrics["rl"]["overall"] - metrics["control"]["overall"])
    md = (built / "report.md").read_text()
    summary = md.split("## Summary", 1)[1].split("\n## ", 1)[0]
    for key in ("sft", "control", "rl", "baseline"):
        assert f"{metrics[key]['overall']:.1f} %" in summary
    # per-type table: every number present; the regression (rel_direction, -7.5 points) is marked
    for t in TYPES:
        assert f"{metrics['rl']['per_type'][t]:.1f}" in md
    assert "rel_direction ▼" in md and page.count('class="regress"') == 1
    assert "−7.5" in md


def test_sections_and_notes(built):
    page = (built / "report.html").read_text()
    for heading in ("Summary", "Accuracy per question type", "Seeds", "Rewards during GRPO",
                    "Sharpness schedule and SNRA reward", "Advantages and learning signal",
                    "Mechanisms on the same completions", "View consistency (mirror pairs)", "Checkpoint sweep",
                    "Inputs"):
        assert f"<h2>{heading}</h2>" in page
    for fig in ("per_type", "seeds", "rewards", "sharpness", "snra", "adv_variance", "zero_variance",
                "consistency", "policy", "losses", "sweep"):
        assert f'id="fig-{fig}"' in page
    assert 'class="note"' in page  # the regression note
    assert "Missing" not in page  # everything was there
    assert "checkpoint-40 ★" in page  # best of the sweep


def test_deterministic_except_generated_line(built, tmp_path):
    again = tmp_path / "again"
    assert cli([str(built), "--out", str(again)]) == 0
    strip = lambda text: re.sub(r"Generated [^\n]*", "", text)  # noqa: E731
    assert strip((again / "report.html").read_text()) == strip((built / "report.html").read_text())
    for f in (built / "report_files").iterdir():
        assert (again / "report_files" / f.name).read_bytes() == f.read_bytes()


def test_python_dash_m_and_title(tmp_path):
    run = make_run_dir(tmp_path, seeds=False)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0"}
    result = subprocess.run([sys.executable, "-m", "spatialrl.report", str(run), "--title", "My <run>"],
                            capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert "report.html" in result.stdout and "missing" not in result.stdout
    page = (run / "report.html").read_text()
    assert "<h1>My &lt;run&gt;</h1>" in page and "Generated 1970-01-01 00:00 UTC" in page
    assert "<h2>Seeds</h2>" not in page


def test_only_metrics_renders_with_notes(tmp_path, capsys):
    run = tmp_path / "bare"
    run.mkdir()
    metrics = make_metrics()
    del metrics["control"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert cli([str(run)]) == 0
    out = capsys.readouterr().out
    for name in ("grpo/log_history.jsonl", "control/log_history.jsonl", "sweep.json", "spatialrl_config.yaml"):
        assert name in out
    page = (run / "report.html").read_text()
    assert "Missing inputs" in page and "Skipped: no" in page
    assert "paper default" in page  # the SNRA curves fall back to the paper's parameters
    assert 'id="fig-per_type"' in page and 'id="fig-snra"' in page and 'id="fig-rewards"' not in page
    assert "RL − control" not in page  # no control: no such difference
    assert (run / "report.md").is_file()


def test_malformed_metrics_names_file_and_field(tmp_path, capsys):
    run = tmp_path / "bad"
    run.mkdir()
    metrics = make_metrics()
    metrics["rl"]["per_type"]["object_count"] = "high"
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert cli([str(run)]) == 2
    err = capsys.readouterr().err
    assert "metrics.json" in err and "rl.per_type.object_count" in err
    assert not (run / "report.html").exists()
    with pytest.raises(ReportError, match=r"metrics.json: field 'sft.overall' is missing"):
        (run / "metrics.json").write_text(json.dumps({"sft": {"per_type": {}}}))
        write_report(run)
    (run / "metrics.json").write_text("{not json")
    with pytest.raises(ReportError, match=r"metrics.json: not valid JSON"):
        write_report(run)


def test_malformed_log_and_sweep_name_line_and_field(tmp_path):
    run = make_run_dir(tmp_path, seeds=False)
    log = run / "grpo" / "log_history.jsonl"
    lines = log.read_text().splitlines()
    lines[4] = lines[4].replace('"adv/variance": ', '"adv/variance": "x", "ignored": ')
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(ReportError, match=r"grpo/log_history.jsonl line 5: field 'adv/variance'"):
        write_report(run)
    _jsonl(log, make_log())
    (run / "sweep.json").write_text(json.dumps({"models": [{"name": "a", "step": "ten", "overall": 1.0}]}))
    with pytest.raises(ReportError, match=r"sweep.json: field 'models\[0\].step'"):
        write_report(run)
    (run / "sweep.json").write_text(json.dumps(make_sweep()))
    (run / "grpo" / "spatialrl_config.yaml").write_text(CONFIG.replace("k_max: 50.0", "k_max: 0.5"))
    with pytest.raises(ReportError, match=r"grpo/spatialrl_config.yaml: field 'k_max'"):
        write_report(run)


def test_log_at_top_level_and_nothing_to_report(tmp_path):
    run = tmp_path / "grpo_only"
    _jsonl(run / "log_history.jsonl", make_log(6))
    result = write_report(run)
    assert "rewards" in result.figures and "per_type" not in result.figures
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReportError, match="nothing to report"):
        write_report(empty)
    with pytest.raises(ReportError, match="run directory not found"):
        write_report(tmp_path / "nope")


# --------------------------------------------------------------------------------------
# A real browser
# --------------------------------------------------------------------------------------


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class DevTools:
    """Minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fd 3: commands in, fd 4: out)."""

    def __init__(self, binary: str, profile: Path):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # in the child: our pipe ends become fds 3 and 4
            import fcntl

            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--remote-debugging-pipe", f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
             "--disable-extensions", "--disable-background-networking", "--disable-component-update",
             "--hide-scrollbars", "--window-size=1280,900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, close_fds=False,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_child], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 20) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            e = self._read_message(deadline)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def test_browser_loads_every_image_without_errors(built, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install -y chromium; `make test` installs it)")
    browser = DevTools(binary, tmp_path / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=session)
        browser.send("Page.navigate", {"url": (built / "report.html").as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        result = browser.send("Runtime.evaluate", {"returnByValue": True, "expression": (
            "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth,"
            " h: i.naturalHeight, shown: i.getBoundingClientRect().width}))")}, session=session)
        images = result["result"]["value"]
        assert len(images) >= 10
        for im in images:
            assert im["complete"] and im["w"] > 0 and im["h"] > 0 and im["shown"] > 0, im
        height = browser.send("Runtime.evaluate", {"returnByValue": True, "expression":
                                                   "document.documentElement.scrollHeight"}, session=session)
        shot = browser.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": height["result"]["value"], "scale": 1}}, session=session)
        png = base64.b64decode(shot["data"])
        (tmp_path / "screenshot.png").write_bytes(png)
        if os.environ.get("SPATIALRL_REPORT_SCREENSHOT"):
            Path(os.environ["SPATIALRL_REPORT_SCREENSHOT"]).write_bytes(png)
        with Image.open(io.BytesIO(png)) as im:
            assert im.width == 1280
        events = browser.events
        errors = [e["params"] for e in events if e.get("method") == "Runtime.exceptionThrown"]
        errors += [e["params"] for e in events if e.get("method") == "Runtime.consoleAPICalled"
                   and e["params"].get("type") in ("error", "assert", "warning")]
        errors += [e["params"]["entry"] for e in events if e.get("method") == "Log.entryAdded"
                   and e["params"]["entry"].get("level") in ("error", "warning")]
        errors += [e["params"] for e in events if e.get("method") == "Network.loadingFailed"]
        assert not errors, errors
        requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
        assert requests and all(u.startswith(("file:", "data:")) for u in requests), requests
    finally:
        browser.close()


def test_advantages_section_shows_convergence_steps(built, tmp_path):
    # make_log's accuracy reward rises linearly 0.2 + 0.5 t over 40 steps: the trailing mean over 5
    # values at step s is 0.2 + 0.5 (s - 2) / 40, max 0.675 at step 40; 0.95 * 0.675 = 0.64125, first reached at s = 38
    page = (built / "report.md").read_text()
    assert "T_conv (steps) | 38" in page and "rewards/accuracy/mean" in page
    assert "T_conv (steps)" in (built / "report.html").read_text()
    run = tmp_path / "run"
    run.mkdir()
    rows = [{k: v for k, v in row.items() if not k.startswith("rewards/accuracy")} for row in make_log()]
    (run / "log_history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_report(run)
    assert "has no usable `accuracy/correct` entries" in (run / "report.md").read_text()


MECHANISM_FIGS = ("mech_zero_variance", "mech_near_miss", "mech_adv_variance", "mech_sharpness", "mech_abs_delta")


def _figure_html(page: str, name: str) -> str:
    return page.split(f'<figure id="fig-{name}">', 1)[1].split("</figure>", 1)[0]


def test_mechanisms_section_pairs_curves_with_their_claims(built, tmp_path):
    page = (built / "report.html").read_text()
    section = page.split("<h2>Mechanisms on the same completions</h2>", 1)[1].split("<h2>", 1)[0]
    claims = {"mech_zero_variance": "Smooth Operator Fig. 1", "mech_near_miss": "App. A.1",
              "mech_adv_variance": "App. A.2-A.3", "mech_sharpness": "reward hardening",
              "mech_abs_delta": "SVQA-R1 eq. 2-4"}
    for name in MECHANISM_FIGS:
        assert f'id="fig-{name}"' in section
        figure = _figure_html(page, name)
        img, caption = figure.split("<figcaption>", 1)  # the claim is written under the plot
        assert "<img" in img and "<strong>Claim</strong>" in caption and claims[name] in caption
    # the pair plots hold two curves: both labels are in the legend, so the PNG differs from a one-curve plot
    from spatialrl.report import plots as rp

    log = report.load_inputs(built).grpo_log
    both = rp.plot_mechanism([("SNRA", log.series("mechanisms/zero_var_frac_snra"), "#009E73", "-"),
                              ("binary", log.series("mechanisms/zero_var_frac_binary"), "#D55E00", "--")], "f", "t")
    one = rp.plot_mechanism([("SNRA", log.series("mechanisms/zero_var_frac_snra"), "#009E73", "-"),
                             ("binary", None, "#D55E00", "--")], "f", "t")
    assert both and one and both != one
    # the table of means: make_log's zero_var_frac_snra is 0.2 - 0.1 s/40, mean 0.2 - 0.1 * 20.5 / 40
    md = (built / "report.md").read_text()
    assert f"`mechanisms/zero_var_frac_snra` | {0.2 - 0.1 * 20.5 / 40:.3f} | 40" in md
    assert "`mechanisms/near_miss_use_grpo` | 0.900 | 39" in md  # the NaN step is skipped
    for name in MECHANISM_FIGS:
        assert f"report_files/{name}.png" in md
    # a log without mechanisms/* keys: a note, no figures
    run = tmp_path / "old"
    run.mkdir()
    rows = [{k: v for k, v in row.items() if not k.startswith("mechanisms/")} for row in make_log()]
    (run / "log_history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_report(run)
    text = (run / "report.md").read_text()
    assert "has no `mechanisms/*` entries" in text and "mech_zero_variance" not in text


def test_templates_escape_html_and_keep_markdown():
    from spatialrl.report.document import Bullets, Cell, Note, Para, Section, Table
    from spatialrl.report.render import render_html, render_markdown

    sections = [Section("s", "A <b> & C", [
        Para("see `a<b>` and **bold & <i>**"), Note("<script>alert(1)</script>"), Bullets(["x | y"]),
        Table(["type <t>", "n"], [[Cell("a|b <c>"), Cell("1.0", "num", 1.0)], [Cell("all"), Cell("2.0", "num", 2.0)]],
              ["", "total"], "cap `c`")])]
    page = render_html('T "<x>"', "Generated from `dir`", sections)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<title>T &#34;&lt;x&gt;&#34;</title>" in page and "<h2>A &lt;b&gt; &amp; C</h2>" in page
    assert "<p>see <code>a&lt;b&gt;</code> and <strong>bold &amp; &lt;i&gt;</strong></p>" in page
    assert '<th>type &lt;t&gt;</th><th class="num">n</th>' in page
    assert '<tr class="total"><td>all</td><td class="num" data-value="2.0">2.0</td></tr>' in page
    assert '<p class="tcap">cap <code>c</code></p>' in page and "<code>dir</code>" in page
    md = render_markdown('T "<x>"', "Generated from `dir`", sections, "report_files")
    assert md.startswith('# T "<x>"\n\n_Generated from `dir`_\n\nContents: [A <b> & C](#s)\n')
    assert "see `a<b>` and **bold & <i>**\n\n> **Note:** <script>alert(1)</script>\n\n- x | y\n" in md
    assert "| type <t> | n |\n|---|---:|\n| a\\|b <c> | 1.0 |\n| **all** | **2.0** |\n\n*cap `c`*\n" in md
    assert md.endswith("*cap `c`*\n")


def test_templates_ship_as_package_data():
    import importlib.resources
    import tomllib

    templates = importlib.resources.files("spatialrl.report") / "templates"
    assert {"report.html.jinja", "report.md.jinja", "report.css"} <= {p.name for p in templates.iterdir()}
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "templates/*" in package_data["spatialrl.report"]


def test_held_out_section_shows_greedy_sampled_and_paired_intervals(tmp_path, capsys):
    run = tmp_path / "held"
    run.mkdir()
    metrics = make_metrics()
    metrics["sampled"] = {key: {"overall": 40.0 + i, "k": 4, "temperature": 1.0, "items": 480,
                                "greedy_same_items": 50.0 + i} for i, key in enumerate(("sft", "control", "rl"))}
    metrics["paired"] = {"rl_minus_sft": {"greedy": {"diff": 0.3, "ci95": [-0.7, 1.3], "clusters": 1200},
                                          "sampled": {"diff": -0.6, "ci95": [-1.6, 0.4], "clusters": 240}}}
    metrics["pair_consistency"] = {"sft": 53.5, "rl": 54.2}
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert cli([str(run)]) == 0
    md = (run / "report.md").read_text()
    section = md[md.index("## Greedy and sampled, paired"):md.index("## Accuracy per question type")]
    assert "k = 4 answers at temperature 1.0" in section and "on 480 of its items" in section
    assert "| RL − start | greedy | +0.3 | [−0.7, +1.3] | 1200 |" in section
    assert "| RL − start | sampled | −0.6 | [−1.6, +0.4] | 240 |" in section
    assert "| RL | " in section and "54.2" in section and "42.0" in section  # RL's sampled score and consistency
    metrics["paired"] = "wrong"
    (run / "metrics.json").write_text(json.dumps(metrics))
    assert cli([str(run)]) == 2
    assert "field 'paired' must be a JSON object" in capsys.readouterr().err
