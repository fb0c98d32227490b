"""Builds the algodistill Gradio app and launches it (locally on 127.0.0.1; on Spaces as Spaces asks)."""

import os

from algodistill.ui import build_app, css

demo = build_app()

if __name__ == "__main__":
    # Spaces (and anyone who wants the app reachable from other machines) sets GRADIO_SERVER_NAME.
    host = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
    demo.launch(server_name=host, css=css())
