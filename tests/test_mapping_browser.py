"""The HTML deployment report (`neurohw map --html`) in a real browser: headless Chromium via
selenium loads it without console errors, its figures render (non-zero size, nothing clipped
by its svg), and the numbers it shows -- text, table cells and the drawn bar heights -- are
the plan JSON's.  Skips, saying why, where selenium, Chromium or chromedriver is missing
(`apt-get install chromium chromium-driver`; selenium is pinned in requirements/test.txt)."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

import neurohw as nh
from neurohw.cli import main
from neurohw.mapping import RESOURCES, plan
from neurohw.mapping.html import plan_html

sys.path.insert(0, str(Path(__file__).parent))
from test_mapping import convnet, mlp  # noqa: E402

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install -r requirements/test.txt)")

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless browser check needs chromium and chromedriver on PATH "
           "(apt-get install chromium chromium-driver)")

# Every drawn element of every svg, with its box relative to the svg's box (CSS px).  The
# report's svgs have no viewBox, so one user unit is one CSS px and the drawn bar heights
# can be compared with the plan's numbers directly.
_GEOMETRY = """
return [...document.querySelectorAll('svg')].map(svg => {
  const s = svg.getBoundingClientRect();
  const els = [...svg.querySelectorAll('rect, text, line, polyline')].map(e => {
    const b = e.getBoundingClientRect();
    return {tag: e.tagName, cls: e.getAttribute('class'), core: e.getAttribute('data-core'),
            res: e.getAttribute('data-resource'), text: e.textContent,
            left: b.left - s.left, right: b.right - s.left, top: b.top - s.top,
            bottom: b.bottom - s.top, w: b.width, h: b.height};
  });
  return {id: svg.id, w: s.width, h: s.height, els: els};
});"""


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()


def _open(drv, path: Path):
    """Load ``path``; returns the console messages at level WARNING or above it logged."""
    drv.get_log("browser")  # drop what an earlier page left
    drv.get(path.resolve().as_uri())
    assert drv.execute_script("return document.readyState") == "complete"
    return [e for e in drv.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]


def _check_figures(figs):
    """Every svg has a size, draws something, and nothing it draws is clipped by it."""
    assert figs
    for f in figs:
        assert f["w"] > 0 and f["h"] > 0, f["id"]
        drawn = [e for e in f["els"] if e["w"] > 0 or e["h"] > 0]
        assert drawn, f["id"]
        for e in drawn:
            assert (e["left"] >= -1 and e["right"] <= f["w"] + 1 and e["top"] >= -1
                    and e["bottom"] <= f["h"] + 1), (f["id"], f["w"], f["h"], e)


def _cells(drv, table_id):
    return drv.execute_script(
        "return [...document.querySelectorAll('#' + arguments[0] + ' tbody tr')]"
        ".map(r => [...r.cells].map(c => c.innerText));", table_id)


def test_console_errors_are_caught(tmp_path, browser):
    """The console check can fail: a page that logs an error is seen as one."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><body><script>console.error("boom")</script>'
                    "</body></html>")
    logs = _open(browser, page)
    assert any("boom" in e["message"] for e in logs), logs


def test_report_renders_and_shows_the_plan(tmp_path, browser):
    rng = np.random.default_rng(0)
    model = nh.write_network(convnet(rng), tmp_path / "m.q.nir")
    np.save(tmp_path / "x.npy", (rng.random((1, 6, 2 * 12 * 12)) < 0.3).astype(np.int64))
    js, ht = tmp_path / "p.json", tmp_path / "p.html"
    assert main(["map", str(model), "--input", str(tmp_path / "x.npy"), "--json", str(js),
                 "--html", str(ht)]) == 0
    d = json.loads(js.read_text())
    assert d["fits"] and d["events"]["steps"] == 6

    assert _open(browser, ht) == []
    figs = {f["id"]: f for f in browser.execute_script(_GEOMETRY)}
    assert set(figs) == {"core-utilization", "energy-breakdown", "per-step-activity"}
    _check_figures(figs.values())

    # core utilization: one bar per (core, resource), drawn 130 px tall at 100 % of the limit
    bars = [e for e in figs["core-utilization"]["els"] if e["cls"] == "bar"]
    assert len(bars) == len(RESOURCES) * d["cores_used"] == len(RESOURCES) * len(d["blocks"])
    by = {(e["core"], e["res"]): e["h"] for e in bars}
    for b in d["blocks"]:
        for r in RESOURCES:
            want = 130 * min(b[r]["used"] / b[r]["limit"], 1.0) if b[r]["limit"] else 0.0
            assert abs(by[(f'{b["chip"]}.{b["core"]}', r)] - want) <= 0.6, (b["node"], r)
    # energy breakdown: bar widths are each part's share of 300 px, labels the J values
    parts = d["energy_j"]["breakdown"]
    widths = [e["w"] for e in figs["energy-breakdown"]["els"] if e["tag"] == "rect"]
    total = sum(parts.values())
    assert np.allclose(widths, [300 * v / total for v in parts.values()], atol=0.6)
    text = " ".join(e["text"] for e in figs["energy-breakdown"]["els"] if e["tag"] == "text")
    for k, v in parts.items():
        assert k in text and f"{v:.3g} J" in text, k
    # activity: one visible curve per series, the legend giving each series' maximum
    lines = [e for e in figs["per-step-activity"]["els"] if e["tag"] == "polyline"]
    assert len(lines) == len(d["events"]["per_step"]) and all(e["w"] > 100 for e in lines)
    legend = " ".join(e["text"] for e in figs["per-step-activity"]["els"] if e["tag"] == "text")
    for k, ys in d["events"]["per_step"].items():
        assert f"{k} (max {max(ys):.3g})" in legend, k

    verdict = browser.find_element("id", "verdict").text
    for shown in (f'{d["cores_used"]} cores on {d["chips_used"]} chip(s)',
                  f'binding limit {d["binding_limit"]}', f'{d["energy_j"]["total"]:.4g} J',
                  f'latency {d["latency_s"]["per_inference"]:.4g} s',
                  f'EDP {d["edp_js"]:.4g} J s', d["constant_set"]):
        assert shown in verdict, (shown, verdict)
    events = dict(_cells(browser, "events"))
    for k, v in events.items():
        assert int(v) == d["events"][k], k
    metrics = dict(_cells(browser, "metrics"))
    for k, v in d["metrics"].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            assert np.isclose(float(metrics[k]), v, rtol=1e-5), k
    rows = _cells(browser, "blocks")
    assert len(rows) == len(d["blocks"])
    for row, b in zip(rows, d["blocks"]):
        assert row[:4] == [b["node"], str(b["neurons"]), str(b["chip"]), str(b["core"])]
        assert row[4:4 + len(RESOURCES)] == [f'{b[r]["used"]}/{b[r]["limit"]}' for r in RESOURCES]


def test_one_step_worst_case_and_refused_reports(tmp_path, browser):
    """The default `map` (worst case, one step) and a refused plan render without errors: one
    step gives a sentence in place of an empty curve; a part near 100 % keeps its label."""
    rng = np.random.default_rng(1)
    d = plan(mlp(rng), steps=1).to_dict()
    assert d["fits"] and d["events"]["worst_case"] and d["events"]["steps"] == 1
    page = tmp_path / "w.html"
    page.write_text(plan_html(d), encoding="utf-8")
    assert _open(browser, page) == []
    figs = browser.execute_script(_GEOMETRY)
    assert {f["id"] for f in figs} == {"core-utilization", "energy-breakdown"}
    _check_figures(figs)
    assert "One step per inference" in browser.find_element("id", "per-step-activity").text
    # one part holding nearly all the energy: its label still fits the figure
    d2 = dict(d, energy_j=dict(d["energy_j"], breakdown={"synops": 9.99e-4, "spike_hops": 1e-7}))
    page.write_text(plan_html(d2), encoding="utf-8")
    assert _open(browser, page) == []
    _check_figures([f for f in browser.execute_script(_GEOMETRY) if f["id"] == "energy-breakdown"])

    refused = plan(convnet(rng, c0=2, c=32, hw=48)).to_dict()
    assert not refused["fits"]
    page.write_text(plan_html(refused), encoding="utf-8")
    assert _open(browser, page) == []
    assert browser.execute_script("return document.querySelectorAll('svg').length") == 0
    text = browser.find_element("id", "verdict").text
    assert text.startswith("Does not fit on loihi1") and refused["refusal"] in text
