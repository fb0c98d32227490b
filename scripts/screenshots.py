"""The README's screenshots, from the demo bundle (a real Qwen2.5-Coder-0.5B run), in a 1440 x 900 window.

    .venv/bin/python scripts/screenshots.py assets/screenshots

Starts the app on a fresh, empty home (so the bundle in assets/demo is loaded as the demo), then shows the
demo's adapter evaluation against its base model in Eval, a fixed cell side by side in Inspect, the loss
curve and the Runs table.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ADAPTER_RUN = "#22 [demo] qwen2.5-coder-0.5b + 20-varied-code-first-self [contract] [completed]"
BASE_RUN = "#4 [demo] qwen2.5-coder-0.5b (base) [contract] [completed]"


def start_app() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, ALGODISTILL_HOME=tempfile.mkdtemp(), GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False")
    env.pop("ALGODISTILL_DB", None)
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("the app did not start")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    proc, url = start_app()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url, wait_until="load")
            page.wait_for_timeout(4000)

            def tab(name: str, wait_ms: int = 3000) -> None:
                page.evaluate("window.scrollTo(0, 0)")
                page.get_by_role("tab", name=name).click(timeout=60_000)
                page.wait_for_timeout(wait_ms)

            def pick(elem_id: str, text: str) -> None:
                box = page.locator(f"#{elem_id} input")
                box.click(timeout=120_000)
                box.fill(text)
                page.wait_for_timeout(500)
                page.get_by_role("option", name=text).first.click()
                page.wait_for_timeout(1500)

            tab("Eval", 1500)
            expect(page.locator("#eval-headline")).to_contain_text("solved", timeout=120_000)  # the page is filled
            pick("eval-a", ADAPTER_RUN)
            pick("eval-b", BASE_RUN)
            cell = page.locator('#eval-grid [data-testid="cell-1-1"]')  # arithmetic, difficulty 1: fixed
            expect(cell).to_contain_text("→", timeout=60_000)
            page.locator("#eval-a").scroll_into_view_if_needed()
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / "eval.png"))
            cell.click()
            expect(page.locator("#inspect-tests-a")).to_contain_text("evaluate(", timeout=60_000)
            page.locator("#inspect-tests-a").scroll_into_view_if_needed()
            page.evaluate("window.scrollBy(0, -120)")
            page.wait_for_timeout(800)
            page.screenshot(path=str(out / "inspect.png"))
            tab("Loss", 5000)
            page.screenshot(path=str(out / "loss.png"))
            tab("Runs")
            page.screenshot(path=str(out / "runs.png"))
            browser.close()
    finally:
        proc.terminate()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "assets/screenshots"))
