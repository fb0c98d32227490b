"""Eval tab, 'Learned vs forgot': for one adapter, the grid in each prompt style and HumanEval against the base
model on the same instances (learned.py chooses and pairs the runs), as a table and a compact figure.

It only reads the store. The section is filled when it is opened, on Refresh and when another adapter is
chosen; clicking a row puts its adapter run and base run in the tab's Evaluation and Compare with lists, so
the grid below shows that pair cell by cell, and a cell opens its samples in Inspect.
"""

from ..learned import LEGEND, adapters, headline, learned_vs_forgot
from .common import run_choices, store
from .eval_figures import learned_figure, learned_table

NONE_YET = ("No adapter has been evaluated in this store yet. Evaluate one with *Also evaluate the base model* "
            "(prompt style *all* adds the transfer rows); HumanEval: `python -m algodistill eval --benchmark "
            "humaneval --model M --adapter DIR --compare-base`.")


def adapter_options() -> list[tuple[str, str]]:
    """(label, directory) of every adapter with evaluation runs, the most recently evaluated first."""
    return [(a["label"], a["adapter"]) for a in adapters(store())]


def show_learned(adapter) -> tuple:
    """(header markdown, table, figure, rows) of one adapter; the rows are kept for a click on the table."""
    known = adapters(store())
    if not adapter:
        return (NONE_YET if not known else "Choose an adapter.", None, None, [])
    try:
        rows = learned_vs_forgot(store(), adapter)
    except ValueError:
        return ("This adapter has no evaluation runs in this store.", None, None, [])
    name = next((a["name"] for a in known if a["adapter"] == adapter), adapter)
    header = (f"**{name}**: {headline(rows)}.  \n<span style='font-size:13px;opacity:.8'>{LEGEND} "
              "Click a row to compare its two runs in the grid below.</span>")
    return header, learned_table(rows), learned_figure(rows), rows


def pair_of_row(rows: list[dict], index: int) -> tuple[int | None, int | None]:
    """The (adapter run, base run) behind row ``index`` of the table; (None, None) for a row without runs."""
    if not 0 <= index < len(rows) or rows[index]["adapter"] is None:
        return None, None
    base = rows[index]["base"]
    return rows[index]["adapter"]["run"], base["run"] if base else None


def build(gr) -> dict:
    """The section, closed until opened; ``connect`` ties its table to the tab's run lists."""
    with gr.Accordion("Learned vs forgot: an adapter against its base model (the grid in four prompt styles, "
                      "HumanEval)", open=False, elem_id="learned") as section:
        with gr.Row(equal_height=False):
            adapter = gr.Dropdown([], value=None, label="Adapter (one with evaluation runs)", scale=5,
                                  elem_id="learned-adapter")
            refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100, elem_id="learned-refresh")
        header = gr.Markdown(elem_id="learned-header")
        table = gr.Dataframe(interactive=False, wrap=True, elem_id="learned-table", show_label=False,
                             column_widths=["10%", "10%", "15%", "15%", "8%", "6.5%", "6.5%", "14%", "15%"])
        figure = gr.Plot(show_label=False, elem_id="learned-figure")
    rows = gr.State([])
    view = [header, table, figure, rows]

    def reload(chosen):
        """Fresh adapter list (the chosen one kept when it is still there) and its view."""
        options = adapter_options()
        value = chosen if any(chosen == v for _, v in options) else (options[0][1] if options else None)
        return (gr.update(choices=options, value=value), *show_learned(value))

    for event in (section.expand, refresh.click):
        event(reload, [adapter], [adapter, *view], api_visibility="private")
    adapter.input(show_learned, [adapter], view, api_name="learned_vs_forgot")
    return {"adapter": adapter, "table": table, "rows": rows, "view": view}


def connect(gr, parts: dict, run_a, run_b) -> None:
    """A click on a row of the table shows its adapter run (Evaluation) against its base run (Compare with)."""
    def open_pair(rows, evt: gr.SelectData):  # a real annotation (no postponed ones here): Gradio reads it
        a, b = pair_of_row(rows, evt.index[0])
        if a is None:
            return gr.skip(), gr.skip()
        choices = run_choices("eval")
        return gr.update(choices=choices, value=a), gr.update(choices=choices, value=b)

    parts["table"].select(open_pair, [parts["rows"]], [run_a, run_b], api_visibility="private")
