"""How fast the app answers a click on the demo store, in a 1440 x 900 window. Prints one JSON object: per action,
the median and the worst of N tries, in seconds, from the click to the content drawn.

    python bench/ui_latency.py               # 5 tries each
    python bench/ui_latency.py --tries 3

Starts ``app.py`` on a fresh, empty home (so the demo bundle in assets/demo is loaded) and drives it with
Playwright in Debian's chromium. The actions (issue 25 §5's list):
- ``first_view``: from the page's request to the landing view drawn (the Eval headline with its verdict);
- ``tab_<name>``: a tab click to its content drawn (each tab's own anchor visible and filled);
- ``cell_to_samples``: a heatmap cell click to its samples listed in Inspect;
- ``sample_to_code``: a sample click in Inspect's list to its test table drawn;
- ``run_detail``: a row of the Runs table to the run's detail.
Name the CPU next to the figures (``lscpu``): machines differ, and so does a busy one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from screenshots import ARGS, start_app  # noqa: E402  (the app on a fresh home, so the demo loads)
# tab -> what shows that its content is drawn
TABS = {"Train": "#train-status", "Loss": "#loss-plot .scatterlayer .point", "Eval": "#eval-grid [data-testid='cell-0-1']",
        "Inspect": "#inspect-list [data-testid='cell-0-0']", "Data": "#data-verify", "Runs": "#runs-table [data-testid='cell-0-0']"}


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(action) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import expect, sync_playwright
    proc, url = start_app()
    results: dict[str, list[float]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for _ in range(args.tries):
                results.setdefault("first_view", []).append(timed(lambda: (
                    page.goto(url, wait_until="commit"),
                    expect(page.locator("#eval-headline")).to_contain_text("Verdict", timeout=120_000))))
            for _ in range(args.tries):
                for name, anchor in TABS.items():
                    def switch(name=name, anchor=anchor):
                        page.get_by_role("tab", name=name).click()
                        expect(page.locator(anchor).first).to_be_visible(timeout=120_000)
                    results.setdefault(f"tab_{name.lower()}", []).append(timed(switch))
            for n in range(args.tries):
                page.get_by_role("tab", name="Eval").click()
                cell = page.locator(f"#eval-grid [data-testid='cell-{n % 5}-1']")
                expect(cell).to_be_visible(timeout=60_000)
                results.setdefault("cell_to_samples", []).append(timed(lambda: (
                    cell.click(), expect(page.locator("#inspect-list [data-testid='cell-0-0']")).to_be_visible(
                        timeout=60_000))))
            page.goto(url + "?tab=inspect", wait_until="load")  # every sample of the newest comparison listed
            for n in range(args.tries):
                row = page.locator(f"#inspect-list [data-testid='cell-{n % 5}-0']")
                expect(row).to_be_visible(timeout=60_000)
                before = page.locator("#inspect-prompt").inner_text()

                def sample(row=row, before=before):  # drawn: another instance's prompt, and its test table
                    row.click()
                    page.wait_for_function("(before) => { const p = document.querySelector('#inspect-prompt');"
                                           " return p && p.innerText.trim() && p.innerText !== before; }",
                                           arg=before, timeout=60_000)
                    expect(page.locator("#inspect-tests-a [data-testid='cell-0-0']")).to_be_visible(timeout=60_000)
                results.setdefault("sample_to_code", []).append(timed(sample))
            page.get_by_role("tab", name="Runs").click()
            for n in range(args.tries):
                cell = page.locator(f"#runs-table [data-testid='cell-{n}-0']")
                expect(cell).to_be_visible(timeout=60_000)
                text = cell.inner_text().strip()
                results.setdefault("run_detail", []).append(timed(lambda: (
                    cell.click(), expect(page.locator("#runs-detail")).to_contain_text(f"#{text} ", timeout=60_000))))
            browser.close()
    finally:
        proc.terminate()
    print(json.dumps({"cpu": cpu_name(), "cores": os.cpu_count(), "tries": args.tries,
                      "seconds": {name: {"median": round(statistics.median(v), 2), "worst": round(max(v), 2)}
                                  for name, v in results.items()}}, indent=1))


if __name__ == "__main__":
    main()
