"""The Gradio app: one module per tab, each exposing plain handler functions that tests call directly.

No torch/transformers/trl import at module level anywhere under ui/, so the app starts in seconds.
"""


from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"


def build_app(hosted: bool | None = None):
    """The app. ``hosted`` (default: from the environment, see ``access``) makes visitors read-only; the
    write handlers check the caller on every call either way."""
    import gradio as gr

    from . import access, data_tab, eval_tab, failures, inspect_tab, links, loss_tab, runs_tab, train_tab
    from .common import (FAST_POLL_S, HEAVY, VISITOR_POLL_S, WATCH_S, activity, dispatch_jobs, remembered,
                         run_choices)
    dispatch_jobs()  # a launch left waiting by a job process killed before it could start it starts now

    access.configure(access.hosted_for(None) if hosted is None else hosted)
    # Gradio's temporary copies of uploads (a visitor's included) are removed after an hour
    # the whole window: two solutions side by side and the runs table need the width
    with gr.Blocks(title="algodistill", delete_cache=(600, 3600), fill_width=True) as demo, access.collecting() as owner_areas:
        with gr.Row():
            gr.Markdown("# algodistill\nDistill algorithmic skill into a small code model and see, cell by cell, "
                        "what it learned.")
            if access.hosted() and access.on_spaces():
                gr.LoginButton(scale=0, min_width=200)
        role = gr.Markdown(elem_id="role-line")
        warning = sandbox_warning()
        if warning:  # every score in this app comes from the sandbox: a weak one must not go unnoticed
            gr.Markdown(warning, elem_id="sandbox-warning")
        storage = storage_warning()
        if storage:  # runs that vanish on a restart must be said before anyone starts one
            gr.Markdown(storage, elem_id="storage-warning")
        # each form's last used values in this browser, outside the tabs so that they are read at load
        saved = {form: remembered(gr, form) for form in ("train", "eval")}
        with gr.Tabs() as tabs:
            with gr.Tab("Train", id="train") as train_page:
                train = train_tab.build(gr, saved["train"])
            with gr.Tab("Loss", id="loss") as loss_page:
                loss = loss_tab.build(gr)
            with gr.Tab("Eval", id="eval") as eval_page:
                evals = eval_tab.build(gr, saved["eval"])
            with gr.Tab("Inspect", id="inspect") as inspect_page:
                inspect = inspect_tab.build(gr)
            with gr.Tab("Data", id="data") as data_page:
                data = data_tab.build()
            with gr.Tab("Runs", id="runs") as runs_page:
                runs = runs_tab.build(gr)
        runs_page.select(runs_tab.runs_rows, None, [runs["table"]], api_visibility="private")
        loss_page.select(*loss["redraw"], show_progress="hidden", api_visibility="private")
        # verifying every trace set runs the sandbox, so the list is filled when the tab is opened
        data_page.select(data_tab.trace_set_rows, None, [data["sets"]], api_name="trace_sets", **HEAVY)
        # the address names the tab shown and the runs it shows (links.py), so it can be copied and shared
        linked = [loss["runs"], evals["run_a"], evals["run_b"], inspect["run_a"], inspect["run_b"],
                  inspect["problem"], inspect["difficulty"], inspect["change"]]  # links.LINKED's order
        pages = {"train": train_page, "loss": loss_page, "eval": eval_page, "inspect": inspect_page,
                 "data": data_page, "runs": runs_page}
        for name, page in pages.items():
            page.select(None, linked, None, js=links.url_js("select", name))
        # Polling: an idle page asks one cheap question every WATCH_S seconds (is a run queued or running, did
        # the store change?); only then is the shown tab's refresh timer turned on, and it turns itself off
        # again once nothing runs (common.fast_timer). Hidden tabs never poll.
        timers = {"train": train["timer"], "loss": loss["timer"], "eval": evals["timer"], "data": data["timer"]}
        shown_tab, token = gr.State("train"), gr.State("")

        def wake(tab, last):
            dispatch_jobs()  # the queue moves on after a job killed too hard to start the next one itself
            busy, now = activity()
            if not busy and now == last:
                return (*(gr.skip(),) * len(timers), last)
            every = FAST_POLL_S if access.is_owner() else VISITOR_POLL_S
            return (*(gr.Timer(value=every, active=True) if name == tab else gr.skip() for name in timers), now)

        gr.Timer(WATCH_S).tick(wake, [shown_tab, token], [*timers.values(), token], show_progress="hidden",
                               api_visibility="private")

        def showing(name):
            def select():  # the tab shown refreshes once (and goes on while a run is active); the others stop
                return (name, *(gr.Timer(active=key == name) for key in timers))
            return select

        for name, page in pages.items():
            page.select(showing(name), None, [shown_tab, *timers.values()], show_progress="hidden",
                        api_visibility="private")
        for name, controls in (("loss", linked[:1]), ("eval", linked[1:3]), ("inspect", linked[3:])):
            for control in controls:
                control.change(None, linked, None, js=links.url_js("change", name))

        def open_cell(run_a, run_b, evt: gr.SelectData, table):
            """A clicked heatmap cell opens its samples in Inspect (both evaluations when two are compared); a
            cell with one sample opens that sample at once."""
            problem, difficulty = eval_tab.cell_at(table, evt.index[0], evt.index[1])
            if problem is None:
                return (gr.skip(),) * (10 + len(inspect["detail"]))
            rows = inspect_tab.sample_rows(run_a, run_b, problem, str(difficulty), "any")
            one = rows[0][:5] if len(rows) == 1 else None
            detail = (inspect_tab.drawn(inspect_tab.sample_detail(run_a, run_b, one)) if one
                      else (gr.skip(),) * len(inspect["detail"]))
            return (gr.Tabs(selected="inspect"), gr.update(choices=run_choices("eval"), value=run_a),
                    gr.update(choices=run_choices("eval"), value=run_b), problem, str(difficulty), "any",
                    *inspect_tab.summary(run_a, run_b, problem, str(difficulty)), rows, one if one else gr.skip(),
                    *detail)

        evals["table"].select(open_cell, [evals["run_a"], evals["run_b"], evals["table"]],
                              [tabs, inspect["run_a"], inspect["run_b"], inspect["problem"], inspect["difficulty"],
                               inspect["kind"], inspect["breakdown"], inspect["change"], inspect["listing"],
                               inspect["shown"], *inspect["detail"]], api_visibility="private")

        def open_cause(run_a, run_b, evt: gr.EventData):
            """A clicked part of the failure breakdown opens the samples with that verdict in Inspect."""
            kind = failures.inspect_filter((evt._data or {}).get("cause", ""))
            if kind not in inspect_tab.KINDS:
                return (gr.skip(),) * 9
            rows = inspect_tab.sample_rows(run_a, run_b, "all", "all", kind)
            return (gr.Tabs(selected="inspect"), gr.update(choices=run_choices("eval"), value=run_a),
                    gr.update(choices=run_choices("eval"), value=run_b), "all", "all", kind,
                    *inspect_tab.summary(run_a, run_b), rows)

        evals["breakdown"].click(open_cause, [evals["run_a"], evals["run_b"]],
                                 [tabs, inspect["run_a"], inspect["run_b"], inspect["problem"], inspect["difficulty"],
                                  inspect["kind"], inspect["breakdown"], inspect["change"], inspect["listing"]],
                                 api_visibility="private")

        def evaluate_adapter(run_id):
            """Train's "Evaluate this adapter": the evaluation starts (or queues) and the Eval tab follows it."""
            text, started = eval_tab.evaluate_adapter(run_id)
            if started is None:
                return (text, *(gr.skip(),) * 5)
            return (text, gr.Tabs(selected="eval"), *eval_tab.launched(text, started))

        train["evaluate"].click(evaluate_adapter, [train["follow"]],
                                [train["message"], tabs, evals["status"], evals["following"], evals["run_a"],
                                 evals["run_b"]], api_name="evaluate_adapter").then(
            lambda: ("eval", *(gr.Timer(active=key == "eval") for key in timers)), None,
            [shown_tab, *timers.values()], api_visibility="private")
        for restore in (train["restore"], evals["restore"]):  # the forms as last used in this browser
            demo.load(*restore, api_visibility="private")

        def fresh_lists(request: gr.Request):
            """A (re)loaded page: lists with the runs created since the app started, then what its address
            names (``links.opening``): by default the newest training run followed and the newest evaluation
            shown in Eval and Inspect."""
            got = links.opening(request.query_params if request else {})
            a, b = got["a"], got["b"]
            eval_a, eval_b = got["eval_a"], got["eval_b"]
            view = eval_tab.show(eval_a, eval_b) if eval_a is not None else (gr.skip(),) * len(evals["view"])
            shown = got["shown"]
            detail = (inspect_tab.drawn(inspect_tab.sample_detail(a, b, shown)) if shown
                      else (gr.skip(),) * len(inspect["detail"]))
            trains, evaluations, inspected = got["train_runs"], got["eval_runs"], got["inspect_runs"]
            return (got["tab"] or "train", gr.Tabs(selected=got["tab"]) if got["tab"] else gr.skip(),
                    gr.update(choices=trains, value=got["follow"]), gr.update(choices=trains, value=got["loss"]),
                    gr.update(choices=evaluations, value=eval_a), gr.update(choices=evaluations, value=eval_b),
                    gr.update(choices=inspected, value=a), gr.update(choices=inspected, value=b),
                    got["problem"], got["difficulty"],
                    *inspect_tab.summary(a, b, got["problem"], got["difficulty"], got["change"]), *view,
                    got["listing"], shown if shown else gr.skip(), *detail,
                    gr.Accordion(open=not got["results"]))  # the form folds away once there is something to show

        def role_view():
            """A visitor's page hides the write controls (the handlers refuse them anyway)."""
            owner = access.is_owner()
            return (access.role_line(), *[gr.update(visible=owner) for _ in owner_areas])

        demo.load(role_view, None, [role, *owner_areas], api_visibility="private")
        opened = demo.load(fresh_lists, None, [shown_tab, tabs, train["follow"], loss["runs"], evals["run_a"],
                                               evals["run_b"], inspect["run_a"], inspect["run_b"], inspect["problem"],
                                               inspect["difficulty"], inspect["breakdown"], inspect["change"],
                                               *evals["view"], inspect["listing"], inspect["shown"],
                                               *inspect["detail"], evals["form"]],
                           api_visibility="private")
        opened.then(None, linked, None, js=links.url_js("ready"))
        opened.then(wake, [shown_tab, gr.State("")], [*timers.values(), token], show_progress="hidden",
                    api_visibility="private")
    quiet_queue(demo)
    return demo


QUEUE_IDLE_SLEEP_S = 0.05


def quiet_queue(demo) -> None:
    """Gradio's queue looks for new work every millisecond while it has none, which cost ~6% of a core on the
    2-core development machine with no visitor and no job (py-spy: the event loop's thread). Every 50 ms (the
    value Gradio itself uses on Windows) it costs a fraction of that (0.7% measured) and adds at most 50 ms before
    a request starts. Attributes of Gradio's own queue, set only where this Gradio has them."""
    queue = getattr(demo, "_queue", None)
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(queue.sleep_when_free, QUEUE_IDLE_SLEEP_S)
    if queue is not None and hasattr(queue, "progress_update_sleep_when_free"):
        queue.progress_update_sleep_when_free = max(queue.progress_update_sleep_when_free, 0.25)


def sandbox_warning() -> str | None:
    """A loud line when generated code runs less isolated here than the sandbox can make it (no namespaces
    or no Landlock on this host), else None."""
    from ..sandbox import SandboxUnavailable, isolation_report
    try:
        report = isolation_report()
    except SandboxUnavailable as exc:
        return f"### ⚠ The sandbox cannot run here\n{exc}"
    if not report["warning"]:
        return None
    return f"### ⚠ Sandbox isolation: {report['level']}\n{report['warning']}"


def storage_warning() -> str | None:
    """A short banner when what is made here does not survive a restart (Spaces without persistent storage),
    saying how to keep it; else None."""
    from ..home import persistent
    kept, why = persistent()
    return None if kept else f"### ⚠ Runs made here vanish when the app restarts\n{why}"


def css() -> str:
    path = ASSETS / "style.css"
    return path.read_text() if path.is_file() else ""
