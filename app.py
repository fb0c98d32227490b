"""Builds the algodistill Gradio app and launches it (locally on 127.0.0.1; on Spaces as Spaces asks).

Hosted (on Spaces, or listening on another address than loopback) a visitor is read-only; see
``algodistill/ui/access.py`` and docs/hosting.md."""

import os

from algodistill.bundle import load_demo
from algodistill.ui import access, build_app, css
from algodistill.ui.common import store, warm_later

# Spaces (and anyone who wants the app reachable from other machines) sets GRADIO_SERVER_NAME.
HOST = os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")
load_demo(store())  # an empty store gets the demo's runs, on its first start only
demo = build_app(hosted=access.hosted_for(HOST))

if __name__ == "__main__":
    warm_later()  # the trace sets' verdicts, cached before anyone opens Data
    demo.launch(server_name=HOST, css=css(), **access.launch_options())
