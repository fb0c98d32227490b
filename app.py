"""Builds the algodistill Gradio app and launches it (locally on 127.0.0.1; on Spaces as Spaces asks)."""

import os

from algodistill.bundle import load_demo
from algodistill.ui import build_app, css
from algodistill.ui.common import store

load_demo(store())  # an empty store gets the demo's runs, on its first start only
demo = build_app()

if __name__ == "__main__":
    # Spaces (and anyone who wants the app reachable from other machines) sets GRADIO_SERVER_NAME.
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    demo.launch(server_name=host, css=css())
