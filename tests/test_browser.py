"""The app in a real browser (Playwright driving Debian's chromium, no browser download) and through
gradio_client: every tab, a tiny-model training whose loss points appear, a small evaluation, and a failing
sample's test table; then, on two stored evaluations, the fixed/broken filter, a sample's code edited and
re-run, links that open a view (and the address following the view), renaming and deleting runs, and the
trained adapter downloaded and loaded with PEFT. Takes a screenshot of each tab;
`ALGODISTILL_SCREENSHOTS=assets/screenshots` refreshes the README's."""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from algodistill.traces import BUNDLED
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS_ENV = "ALGODISTILL_SCREENSHOTS"
WRONG_RPN = "```python\ndef eval_rpn(tokens):\n    return 0\n```"
NO_FIZZBUZZ = "```python\ndef nothing():\n    pass\n```"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """The app's store before it starts: two scored evaluations of rpn and fizzbuzz at difficulties 1 and 3,
    A with rpn right and fizzbuzz missing its function, B the other way round, so from A to B two samples
    were fixed and two broken. Returns the store's path and the two run ids."""
    from algodistill.evaluate import run_scoring
    from algodistill.problems import grid
    from algodistill.sandbox import Limits
    from algodistill.store import Store
    from algodistill.verify import fenced
    db = tmp_path_factory.mktemp("app") / "runs.db"
    store = Store(db)
    instances = grid(["rpn", "fizzbuzz"], [1, 3])
    a = [(i, fenced(i.reference) if i.problem == "rpn" else NO_FIZZBUZZ) for i in instances]
    b = [(i, WRONG_RPN if i.problem == "rpn" else fenced(i.reference)) for i in instances]
    ids = [run_scoring(store, answers, name=name, model="stored answers", settings={"per_cell": 1},
                       limits=Limits())["run"] for name, answers in (("A: rpn right", a), ("B: fizzbuzz right", b))]
    store.close()
    return {"db": db, "a": ids[0], "b": ids[1]}


def start_app(db, **env_extra) -> tuple[subprocess.Popen, str]:
    """``app.py`` on a free port with the store ``db`` (None: the home's, ``ALGODISTILL_HOME`` in ``env_extra``)
    and ``env_extra``, once it answers: (process, url). One behind a login answers 401, which counts as up; an app
    that exits first fails with its output."""
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", **env_extra)
    env.pop("ALGODISTILL_DB", None)
    if db is not None:
        env["ALGODISTILL_DB"] = str(db)
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(120):
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except urllib.error.HTTPError:  # behind a login: up
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read().decode())
            time.sleep(0.5)
    return proc, url


@pytest.fixture(scope="module")
def app_url(seeded):
    proc, url = start_app(seeded["db"])
    yield url
    proc.terminate()
    proc.wait(20)


def test_gradio_client_against_the_running_app(app_url):
    from gradio_client import Client
    client = Client(app_url, verbose=False)
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert {"/start_training", "/start_grpo", "/loss_curves", "/start_evaluation", "/samples",
            "/preview_problem"} <= set(api)
    prompt, tests, reference = client.predict("rpn", 4, 999, 0, api_name="/preview_problem")
    assert "eval_rpn" in prompt and len(tests["data"]) == 5 and "def eval_rpn" in reference
    message = client.predict("/no/such/model.gguf", None, "x", 1, 2e-4, 16, 32, 0.05, 4, 4, 1024, 0.1, 2, "cpu",
                             api_name="/start_training")[0]
    assert "GGUF file not found" in message


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (make test installs it)")
def test_every_tab_in_a_real_browser(app_url, seeded, tiny_model_dir, tmp_path):
    from playwright.sync_api import expect, sync_playwright
    SHOTS = Path(os.environ.get(SHOTS_ENV) or tmp_path)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(app_url, wait_until="load")
        # the store holds results: the page opens on Eval; wait for it before choosing another tab
        expect(page.get_by_role("tab", name="Eval")).to_have_attribute("aria-selected", "true", timeout=60_000)

        def tab(name):
            page.get_by_role("tab", name=name).click()

        def pick(elem_id, text):  # a dropdown that accepts typed values
            box = page.locator(f"#{elem_id} input")
            box.click()
            box.fill(text)
            box.press("Enter")

        def number(label, value):
            field = page.get_by_label(label, exact=True)
            field.fill(str(value))
            field.press("Tab")

        # Train: a short tiny-model run
        tab("Train")
        pick("train-model", tiny_model_dir)
        number("Max steps (-1: epochs decide)", 16)
        number("Per-device batch (0: auto; rest: accumulation)", 2)
        pick("train-device", "cpu")
        page.locator("#train-start").click()
        expect(page.locator("#train-message")).to_contain_text("Started run", timeout=30_000)
        expect(page.locator("#train-status")).to_contain_text("running", timeout=60_000)
        page.screenshot(path=str(SHOTS / "train.png"), full_page=True)

        # Loss: points appear while it trains
        tab("Loss")  # with no run chosen it follows the newest (the first step can take a minute on a busy CPU)
        expect(page.locator("#loss-plot .scatterlayer .point").first).to_be_attached(timeout=180_000)
        page.screenshot(path=str(SHOTS / "loss.png"), full_page=True)
        tab("Train")
        expect(page.locator("#train-status")).to_contain_text("completed", timeout=300_000)

        # Eval: a small grid (the tiny random model fails everything: good material for Inspect)
        tab("Eval")
        page.get_by_text("Run an evaluation", exact=True).click()  # folded: there are results to show
        pick("eval-model", tiny_model_dir)
        number("Max new tokens", 12)
        page.locator("#eval-start").click()
        expect(page.locator("#eval-status")).to_contain_text("Run #", timeout=30_000)  # each run, its counts
        expect(page.locator("#eval-headline")).to_contain_text("0/55 solved", timeout=180_000)
        expect(page.locator("#eval-breakdown [data-cause]").first).to_be_attached(timeout=30_000)
        page.screenshot(path=str(SHOTS / "eval.png"), full_page=True)

        # a heatmap cell opens its samples in Inspect; a failing sample shows its test table
        cell = page.locator('#eval-grid [data-testid="cell-0-1"]')  # rpn, difficulty 1
        expect(cell).to_contain_text("0/1 (0/5)", timeout=30_000)
        cell.click()
        expect(page.get_by_role("tab", name="Inspect")).to_have_attribute("aria-selected", "true", timeout=15_000)
        first_row = page.locator('#inspect-list [data-testid="cell-0-0"]')
        expect(first_row).to_contain_text("rpn", timeout=30_000)
        first_row.click()
        expect(page.locator("#inspect-tests-a")).to_contain_text("eval_rpn(", timeout=30_000)
        expect(page.locator("#inspect-prompt")).to_contain_text("difficulty")
        page.screenshot(path=str(SHOTS / "inspect.png"), full_page=True)

        # a part of the failure breakdown opens the samples with that verdict
        tab("Eval")
        page.locator("#eval-breakdown [data-side='a'][data-cause]").first.click()
        expect(page.get_by_role("tab", name="Inspect")).to_have_attribute("aria-selected", "true", timeout=15_000)
        expect(page.locator('#inspect-list [data-testid="cell-0-0"]')).to_be_attached(timeout=30_000)

        tab("Data")
        expect(page.get_by_text("Preview a problem instance")).to_be_visible()
        expect(page.locator("#data-sets")).to_contain_text("bundled reference set", timeout=30_000)
        good = json.loads(BUNDLED.read_text().splitlines()[0])
        upload = tmp_path / "two traces.jsonl"
        upload.write_text(json.dumps(good) + "\n" + json.dumps(dict(good, response="no code")) + "\n")
        with page.expect_file_chooser() as chooser:
            page.locator("#data-upload").click()
        chooser.value.set_files(str(upload))
        expect(page.locator("#data-verdict")).to_contain_text("1 kept", timeout=30_000)
        expect(page.locator("#data-sets")).to_contain_text("uploaded: two traces", timeout=30_000)
        page.screenshot(path=str(SHOTS / "data.png"), full_page=True)

        from algodistill.store import Store
        store = Store(seeded["db"])
        trained = store.runs(kind="train")[0]["id"]
        fixed_broken_and_rerun(page, app_url, seeded, store, SHOTS)
        links_open_views(page, app_url, seeded, trained, SHOTS)
        rename_delete_and_download(page, app_url, seeded, trained, tiny_model_dir, tmp_path, SHOTS)
        store.close()
        browser.close()


def selected(page, name):
    from playwright.sync_api import expect
    expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true", timeout=60_000)


def fixed_broken_and_rerun(page, url, seeded, store, shots):
    """Inspect between A and B, opened by a link on the broken samples: the A -> B filter counts what was
    fixed and what broke, and the address follows it; a sample's code, edited, re-runs on its tests next to
    the stored outcome, which the store keeps as it was."""
    from playwright.sync_api import expect

    from algodistill.problems import grid
    a, b = seeded["a"], seeded["b"]
    page.goto(f"{url}?tab=inspect&a={a}&b={b}&change=broken", wait_until="load")
    selected(page, "Inspect")
    expect(page.locator("#inspect-breakdown")).to_contain_text(f"B #{b}", timeout=30_000)
    change, listing = page.locator("#inspect-change input"), page.locator("#inspect-list")

    def rows(problem, a_verdict, b_verdict):  # both difficulties of one problem, nothing else
        expect(listing.locator('[data-testid="cell-2-0"]')).to_have_count(0, timeout=30_000)
        for row in (0, 1):
            expect(listing.locator(f'[data-testid="cell-{row}-0"]')).to_have_text(problem, timeout=30_000)
            expect(listing.locator(f'[data-testid="cell-{row}-5"]')).to_have_text(a_verdict)
            expect(listing.locator(f'[data-testid="cell-{row}-7"]')).to_have_text(b_verdict)

    expect(change).to_have_value("broken (2)", timeout=30_000)
    rows("rpn", "passed", "wrong_answer")
    change.click()
    expect(page.get_by_role("option", name="all (4)")).to_be_visible()
    page.get_by_role("option", name="fixed (2)").click()
    rows("fizzbuzz", "missing_function", "passed")
    expect(page).to_have_url(f"{url}?tab=inspect&a={a}&b={b}&change=fixed", timeout=15_000)

    listing.locator('[data-testid="cell-0-0"]').click()  # fizzbuzz, difficulty 1
    expect(page.locator("#inspect-code-a")).to_contain_text("def nothing", timeout=30_000)
    page.locator("#inspect-code-a .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(grid(["fizzbuzz"], [1])[0].reference)
    page.locator("#inspect-rerun-a").click()
    expect(page.get_by_text("Re-run of the edited code: passed, 5/5 tests")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("stored sample: missing_function, 0/5; not changed")).to_be_visible()
    expect(listing.locator('[data-testid="cell-0-5"]')).to_have_text("missing_function")  # the old, beside
    page.screenshot(path=str(shots / "inspect-rerun.png"), full_page=True)
    stored = next(s for s in store.samples(a) if (s["problem"], s["difficulty"]) == ("fizzbuzz", 1))
    assert stored["status"] == "missing_function" and "def nothing" in stored["code"]


def links_open_views(page, url, seeded, trained, shots):
    """A link opens the view it names (a cell with one sample opens that sample); the address follows the
    tab and the runs shown; what a link names that is not there is left out, without an error."""
    from playwright.sync_api import expect
    a, b = seeded["a"], seeded["b"]
    page.goto(f"{url}?tab=inspect&a={a}&b={b}&problem=fizzbuzz&difficulty=3", wait_until="load")
    selected(page, "Inspect")
    expect(page.locator("#inspect-a input")).to_have_value(re.compile(rf"^#{a} "), timeout=30_000)
    expect(page.locator("#inspect-b input")).to_have_value(re.compile(rf"^#{b} "))
    expect(page.locator("#inspect-tests-a")).to_contain_text("fizzbuzz(", timeout=30_000)
    expect(page.locator('#inspect-list [data-testid="cell-1-0"]')).to_have_count(0)
    expect(page.locator("#inspect-change input")).to_have_value("all (1)")
    page.screenshot(path=str(shots / "link-inspect.png"), full_page=True)

    page.get_by_role("tab", name="Eval").click()
    expect(page).to_have_url(f"{url}?tab=eval&a={a}&b={b}", timeout=15_000)
    expect(page.locator("#eval-headline")).to_contain_text("Change from", timeout=30_000)
    page.get_by_role("tab", name="Loss").click()
    expect(page).to_have_url(f"{url}?tab=loss&runs={trained}", timeout=15_000)

    page.goto(f"{url}?tab=loss&runs={trained},abc,-1,99999&a=x&b={a}&difficulty=1e3", wait_until="load")
    selected(page, "Loss")
    expect(page.locator("#loss-runs")).to_contain_text(f"#{trained} ", timeout=30_000)
    expect(page.locator("#loss-plot .scatterlayer .point").first).to_be_attached(timeout=30_000)
    expect(page).to_have_url(f"{url}?tab=loss&runs={trained}", timeout=15_000)  # what is shown, not the junk
    expect(page.locator(".toast-body")).to_have_count(0)


def rename_delete_and_download(page, url, seeded, trained, tiny_model_dir, tmp_path, shots):
    """Runs tab (opened by a link): a run renamed; deleting one needs its number typed; the trained adapter
    downloads as a zip that PEFT loads onto the tiny model."""
    from playwright.sync_api import expect
    a, b = seeded["a"], seeded["b"]
    page.goto(f"{url}?tab=runs", wait_until="load")
    selected(page, "Runs")
    table, message = page.locator("#runs-table"), page.locator("#runs-message")
    expect(table).to_contain_text("B: fizzbuzz right", timeout=30_000)

    def choose(run_id):
        table.locator('[data-testid$="-0"]').get_by_text(str(run_id), exact=True).click()
        expect(page.locator("#runs-chosen").get_by_role("textbox")).to_have_value(f"#{run_id}", timeout=15_000)

    choose(a)
    page.get_by_label("Name", exact=True).fill("A, renamed in the browser")
    page.get_by_role("button", name="Rename").click()
    expect(message).to_contain_text(f"Run #{a} is now called", timeout=30_000)
    expect(table).to_contain_text("A, renamed in the browser")

    choose(b)
    delete = page.get_by_role("button", name="Delete run")
    delete.click()
    expect(message).to_contain_text(f"type {b} in the box first", timeout=30_000)
    expect(table).to_contain_text("B: fizzbuzz right")
    page.get_by_label("Type the run's number to confirm deleting it").fill(str(b))
    delete.click()
    expect(message).to_contain_text(f"Deleted run #{b}", timeout=30_000)
    expect(table).not_to_contain_text("B: fizzbuzz right")
    page.screenshot(path=str(shots / "runs.png"), full_page=True)

    choose(trained)
    page.get_by_role("button", name="Download adapter (zip)").click()
    expect(message).to_contain_text("PeftModel.from_pretrained", timeout=30_000)
    with page.expect_download() as download:
        page.locator("#runs-file a").first.click()
    archive = tmp_path / "adapter.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path / "adapter")
    folder = next(p.parent for p in (tmp_path / "adapter").rglob("adapter_config.json"))
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), folder)
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora and any(p.abs().sum() > 0 for p in lora)  # the trained weights, not a fresh adapter


def hosted_app(tmp_path_factory, **env_extra):
    """The app as a Space serves it (hosted mode), on a store holding one scored evaluation with failures."""
    from algodistill.evaluate import run_scoring
    from algodistill.problems import grid
    from algodistill.sandbox import Limits
    from algodistill.store import Store
    from algodistill.verify import fenced
    db = tmp_path_factory.mktemp("hosted") / "runs.db"
    store = Store(db)
    items = [(inst, fenced(inst.reference if inst.problem == "rpn" else "def nothing():\n    pass\n"))
             for inst in grid(["rpn", "fizzbuzz"], [1, 3])]
    run_scoring(store, items, name="[demo] reference", model="ref", settings={"per_cell": 1}, limits=Limits())
    store.close()
    return start_app(db, ALGODISTILL_HOSTED="1", **env_extra)


# tab -> (an element every role sees, the write controls only the owner sees)
WRITE_CONTROLS = {"Train": ("#train-status", ["#train-start"]), "Eval": ("#eval-a", ["#eval-form"]),
                  "Data": ("#data-verify", ["#data-upload", "#data-delete", "#teacher-start", "#teacher-stop"]),
                  "Runs": ("#runs-table", ["#runs-import"])}


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (make test installs it)")
@pytest.mark.parametrize("who", ["visitor", "owner"])
def test_hosted_app_in_a_real_browser(who, tmp_path_factory, tmp_path):
    """A visitor sees no write control and can still inspect the demo's failures side by side; the owner
    logs in and gets the controls, and a rename goes through."""
    from playwright.sync_api import expect, sync_playwright
    proc, url = hosted_app(tmp_path_factory, **({"ALGODISTILL_AUTH": "owner:s3cret"} if who == "owner" else {}))
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url, wait_until="load")
            if who == "owner":
                page.get_by_label("username").fill("owner")
                page.get_by_label("password").fill("s3cret")
                page.get_by_role("button", name="Login").click()
            expect(page.locator("#role-line")).to_contain_text("you own this app" if who == "owner" else "visiting",
                                                               timeout=60_000)
            for name, (anchor, controls) in WRITE_CONTROLS.items():
                page.get_by_role("tab", name=name).click()
                expect(page.locator(anchor)).to_be_visible(timeout=15_000)  # the tab is drawn
                for control in controls:
                    if who == "owner":
                        expect(page.locator(control)).to_be_visible(timeout=15_000)
                    else:
                        assert not page.locator(control).is_visible(), control
            # the demo evaluation opens in Inspect, failures next to their tests
            page.get_by_role("tab", name="Inspect").click()
            first_row = page.locator('#inspect-list [data-testid="cell-0-0"]')
            expect(first_row).to_be_attached(timeout=30_000)
            page.get_by_role("tab", name="Eval").click()
            cell = page.locator('#eval-grid [data-testid="cell-1-1"]')  # fizzbuzz, difficulty 1: failed
            expect(cell).to_contain_text("0/1", timeout=30_000)
            cell.click()
            expect(page.locator("#inspect-tests-a")).to_contain_text("fizzbuzz(", timeout=30_000)
            page.screenshot(path=str(tmp_path / f"hosted-{who}.png"), full_page=True)
            if who == "owner":
                page.get_by_role("tab", name="Runs").click()
                page.locator('#runs-table [data-testid="cell-0-0"]').click()
                # the click chooses the run on the server: wait for it, or Rename may name no run yet
                expect(page.locator("#runs-chosen").get_by_role("textbox")).to_have_value(re.compile(r"^#\d+$"),
                                                                                          timeout=15_000)
                page.get_by_label("Name", exact=True).fill("renamed by the owner")
                page.get_by_role("button", name="Rename").click()
                expect(page.locator("#runs-message")).to_contain_text("now called", timeout=30_000)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)


def test_an_idle_page_asks_only_the_watchers_question(app_url):
    """With no job running, a page left open makes one request every WATCH_S seconds (the watcher's) and no
    tab polls; Gradio's queue no longer spins while it waits for work."""
    from playwright.sync_api import sync_playwright

    from algodistill.ui import common
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        last = [time.time()]
        page.on("request", lambda r: last.__setitem__(0, time.time()) if "/queue/join" in r.url else None)
        page.goto(app_url, wait_until="load")
        began = time.time()  # the load's own requests and each timer's one refresh, until 4 s pass without one
        while time.time() - last[0] < 4 and time.time() - began < 60:
            page.wait_for_timeout(500)
        joined = []
        page.on("request", lambda r: joined.append(r.url) if "/queue/join" in r.url else None)
        page.wait_for_timeout(1000 * (common.WATCH_S + 2))
        browser.close()
    assert 1 <= len(joined) <= 2, joined  # before: four tabs polled every 2-3 s, ~20 requests in this window


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (make test installs it)")
def test_the_first_visit_lands_on_the_result_and_the_tables_read(tmp_path):
    """On a fresh home the demo loads; at 1440 x 900 the first screen is the newest comparison's headline and
    verdict with the grid's first row, the Eval form folded. Runs: one-line headers, at least 12 runs on the
    first screen, no sideways scroll. Inspect: no test cell narrower than its longest word, A and B row for row."""
    from playwright.sync_api import expect, sync_playwright
    proc, url = start_app(None, ALGODISTILL_HOME=str(tmp_path / "home"))  # a fresh home: the demo loads
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.goto(url, wait_until="load")
            expect(page.locator("#eval-headline")).to_contain_text("Verdict:", timeout=120_000)
            first_row = page.locator('#eval-grid [data-testid="cell-0-1"]')
            expect(first_row).to_be_visible(timeout=30_000)
            for anchor in ("#eval-headline", '#eval-grid [data-testid="cell-0-1"]'):
                box = page.locator(anchor).bounding_box()
                assert box and box["y"] + min(box["height"], 60) <= 900, (anchor, box)  # inside the first screen
            assert page.get_by_role("tab", name="Eval").get_attribute("aria-selected") == "true"
            assert not page.locator("#eval-start").is_visible()  # the form is folded: one click opens it
            page.get_by_role("tab", name="Runs").click()
            expect(page.locator('#runs-table [data-testid="cell-0-0"]')).to_be_visible(timeout=30_000)
            runs = page.evaluate("""() => {
                const t = document.querySelector('#runs-table');
                const heads = [...t.querySelectorAll('thead th')].map(th => th.getBoundingClientRect().height);
                const rows = [...t.querySelectorAll('[data-testid^="cell-"][data-testid$="-0"]')].filter(c => {
                    const b = c.getBoundingClientRect(); return b.height > 0 && b.bottom <= 900; }).length;
                const wide = [...t.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1 &&
                    ['auto', 'scroll'].includes(getComputedStyle(e).overflowX));
                // a cell the browser cuts (its text wider than the cell): the table cuts its texts to fit instead,
                // keeping a name's "[stub]" and a start time's minutes
                const cut = [...t.querySelectorAll('[role="gridcell"] .cell-wrap, thead th')].filter(c =>
                    [c, ...c.querySelectorAll('*')].some(e => e.scrollWidth > c.clientWidth + 1)).map(c => c.innerText);
                return {heads, rows, wide, cut};
            }""")
            assert max(runs["heads"]) <= 45, runs  # one line
            assert runs["rows"] >= 12 and not runs["wide"] and runs["cut"] == [], runs
            # a grid sample of the landing's comparison, then a HumanEval one (the demo's #18 against its base
            # twin #19), whose long check() calls need the room its empty diff and error columns leave
            for address in ("?tab=inspect", "?tab=inspect&a=18&b=19&change=broken"):
                page.goto(url + address, wait_until="load")
                page.locator('#inspect-list [data-testid="cell-0-0"]').first.click(timeout=60_000)
                expect(page.locator("#inspect-tests-b")).to_contain_text(re.compile(r"1 (pass|exception|wrong)"),
                                                                         timeout=60_000)
                page.wait_for_timeout(500)
                _tests_read_side_by_side(page)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)


def _tests_read_side_by_side(page):
    cells = page.evaluate("""() => ['a', 'b'].map(side => {
                const t = document.querySelector('#inspect-tests-' + side);
                // a word broken over two lines ("exceptio/n"): its text range is drawn as more than one box
                const narrow = [...t.querySelectorAll('[role="gridcell"] .cell-wrap')].filter(c => {
                    const walk = document.createTreeWalker(c, NodeFilter.SHOW_TEXT);
                    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
                        for (const m of node.textContent.matchAll(/\S+/g)) {
                            const range = document.createRange();
                            range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
                            const boxes = [...range.getClientRects()].filter(r => r.width > 0);
                            if (boxes.length > 1 && new Set(boxes.map(r => Math.round(r.top))).size > 1) return true;
                        }
                    }
                    return false; });
                const rows = [...t.querySelectorAll('[data-testid^="cell-"][data-testid$="-0"]')]
                    .map(c => Math.round(c.getBoundingClientRect().top));
                // a text cut after its third line, on a sample whose texts fit when the columns share the room
                const clipped = [...t.querySelectorAll('[role="gridcell"] .cell-wrap')].filter(c =>
                    [c, ...c.querySelectorAll('*')].some(e => e.scrollHeight > e.clientHeight + 1));
                const heads = [...t.querySelectorAll('thead th')].filter(th =>
                    [th, ...th.querySelectorAll('*')].some(e => e.scrollWidth > th.clientWidth + 1));
                return {narrow: narrow.map(c => c.innerText), rows, heads: heads.map(th => th.innerText),
                        clipped: clipped.map(c => c.innerText)};
            })""")
    assert cells[0]["narrow"] == [] and cells[1]["narrow"] == [], cells  # no word wider than its cell
    assert cells[0]["heads"] == [] and cells[1]["heads"] == [], cells  # nor a header ("expected" was cut)
    assert cells[0]["clipped"] == [] and cells[1]["clipped"] == [], cells
    assert cells[0]["rows"] == cells[1]["rows"], cells  # A's tests and B's side by side, row for row
