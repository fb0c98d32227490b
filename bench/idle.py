"""What watching costs: the hosted app's server CPU with 0..N idle visitor pages, the pages' own CPU, and the
latency of a plain read (Inspect's /samples) meanwhile. Prints one JSON object.

    python bench/idle.py                      # N = 1, 5, 20 pages, 30 s each, demo store, loopback only
    python bench/idle.py --pages 1 5 --seconds 20

Each visitor is a headless Chromium page (Debian's /usr/bin/chromium through Playwright) left on the first
tab, polling as a browser does; the server is ``app.py`` started as a hosted app (read-only visitors) on a
fresh home, so the demo bundle is loaded. CPU is the process's (and its children's) user+system time over the
window, as % of one core. Name the CPU next to the figures (``lscpu``): machines differ.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cpu_seconds(pids: list[int], children: bool = True) -> float:
    import psutil
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *(proc.children(recursive=True) if children else [])]:
                t = p.cpu_times()
                total += t.user + t.system
        except Exception:  # noqa: BLE001 - a process that ended
            pass
    return total


def _cpu_percent(pids: list[int], seconds: float) -> float:
    before, began = _cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    return 100 * (_cpu_seconds(pids) - before) / (time.monotonic() - began)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _latencies(url: str, stop: threading.Event, out: list[float]) -> None:
    from gradio_client import Client
    client = Client(url, verbose=False)
    runs = [c for c in client.view_api(return_format="dict", print_info=False)["named_endpoints"]]
    assert "/samples" in runs
    while not stop.is_set():
        began = time.perf_counter()
        client.predict("#2", "", "all", "all", "any", "any", api_name="/samples")
        out.append(time.perf_counter() - began)
        stop.wait(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, nargs="+", default=[1, 5, 20])
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    home = tempfile.mkdtemp(prefix="algodistill-idle-")
    port = _free_port()
    env = dict(os.environ, ALGODISTILL_HOME=home, GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="0.0.0.0",
               GRADIO_ANALYTICS_ENABLED="False")
    env.pop("ALGODISTILL_DB", None)
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("the app exited before answering")
                time.sleep(0.5)
        time.sleep(5)  # start-up work (the demo import, the first dispatch) is not idle cost
        result = {"bench": "idle", "cpu": _cpu_name(), "cores": os.cpu_count(), "seconds": args.seconds,
                  "server_cpu_pct": {}, "page_cpu_pct": {}, "read_latency_s": {}}
        result["server_cpu_pct"]["0"] = round(_cpu_percent([server.pid], args.seconds), 2)
        with sync_playwright() as pw:
            launched = time.time() - 1
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            pages = []
            for n in args.pages:
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                began_loading = time.monotonic()
                try:
                    while len(pages) < n:
                        page = context.new_page()
                        page.goto(url, timeout=180_000, wait_until="domcontentloaded")
                        page.wait_for_selector("#role-line", timeout=180_000)
                        pages.append(page)
                except Exception as exc:  # noqa: BLE001 - a browser too busy to load another page is a result
                    result.setdefault("errors", {})[str(n)] = f"page {len(pages) + 1} did not load: {exc}"[:300]
                    n = len(pages)  # measured with the pages that did load
                result.setdefault("load_s", {})[str(n)] = round(time.monotonic() - began_loading, 1)
                time.sleep(5)  # the pages' load-time requests are not idle cost
                stop, latencies = threading.Event(), []
                reader = threading.Thread(target=_latencies, args=(url, stop, latencies), daemon=True)
                reader.start()
                pids = _browser_pids(launched)
                before_server, before_pages, began = _cpu_seconds([server.pid]), _cpu_seconds(pids, False), time.monotonic()
                time.sleep(args.seconds)
                span = time.monotonic() - began
                result["server_cpu_pct"][str(n)] = round(100 * (_cpu_seconds([server.pid]) - before_server) / span, 2)
                result["page_cpu_pct"][str(n)] = round(100 * (_cpu_seconds(_browser_pids(launched), False) - before_pages) / span / max(n, 1), 2)
                stop.set()
                reader.join(30)
                if latencies:
                    ordered = sorted(latencies)
                    result["read_latency_s"][str(n)] = {
                        "p50": round(statistics.median(ordered), 3),
                        "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
                        "n": len(ordered)}
                print(json.dumps(result), file=sys.stderr, flush=True)  # what is known so far
            browser.close()
        print(json.dumps(result))
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


def _browser_pids(since: float) -> list[int]:
    """Every Chromium process started since ``since`` (the browser, its renderers, its GPU and utility processes)."""
    import psutil
    return [p.pid for p in psutil.process_iter(["name", "create_time"])
            if "chrom" in (p.info["name"] or "") and "crashpad" not in p.info["name"] and p.info["create_time"] >= since]


if __name__ == "__main__":
    main()
