"""The Gradio app: one module per tab, each exposing plain handler functions that tests call directly.

No torch/transformers/trl import at module level anywhere under ui/, so the app starts in seconds.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"


def build_app():
    import gradio as gr

    from . import data_tab

    with gr.Blocks(title="algodistill") as demo:
        gr.Markdown("# algodistill\nDistill algorithmic skill into a small code model and see, cell by cell, "
                    "what it learned.")
        with gr.Tabs():
            with gr.Tab("Data", id="data"):
                data_tab.build()
    return demo


def css() -> str:
    path = ASSETS / "style.css"
    return path.read_text() if path.is_file() else ""
