"""Who may change what, checked in every write handler on the server.

Local use (the app listens on a loopback address and is not on Spaces): the one person at the keyboard owns
everything. Hosted (``SPACE_ID`` is set, the app listens on another address, or ``ALGODISTILL_HOSTED=1``):
a visitor reads (runs, loss curves, grids, Inspect, Data) and only the owner writes:
- on Spaces the owner logs in with Hugging Face (``hf_oauth: true`` in the README's front matter and a
  ``gr.LoginButton``): owners are ``SPACE_AUTHOR_NAME`` plus the names in ``ALGODISTILL_OWNERS``
  (comma-separated);
- elsewhere the whole app sits behind Gradio's login, with the accounts from ``ALGODISTILL_AUTH``
  (``user:password`` pairs, comma-separated) or the file named by ``ALGODISTILL_AUTH_FILE`` (one pair per
  line); everyone who logged in owns the app. Without either, a hosted app is read-only for everyone.

The Gradio API is public, so hiding buttons protects nothing: each write handler calls ``require_owner``,
which reads the caller from the request Gradio is serving. A call with no request while hosted is refused.
In hosted mode a model comes from an allow list (never a local path, so nobody can probe the server's
files), an adapter must be one this store made or imported, and messages shown to callers carry no server
paths (``public``).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import gradio as gr

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HUB_SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
_hosted = {"on": False}
_areas: list | None = None  # the owner-only areas of the app being built (``owner_area``)


class Refused(gr.Error):
    """A visitor asked for something only the owner may do; the message says how to become the owner."""


def hosted_for(host: str | None) -> bool:
    """Whether an app listening on ``host`` is hosted: on Spaces, on a non-loopback address, or forced."""
    if os.environ.get("SPACE_ID") or os.environ.get("ALGODISTILL_HOSTED", "").lower() in ("1", "true", "yes"):
        return True
    return bool(host) and host not in LOOPBACK


def configure(hosted: bool) -> None:
    _hosted["on"] = bool(hosted)


def hosted() -> bool:
    return _hosted["on"]


def on_spaces() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def owners() -> set[str]:
    """Hugging Face user names that own a Space: its author and ``ALGODISTILL_OWNERS``, lower-cased."""
    names = [os.environ.get("SPACE_AUTHOR_NAME", "")] + os.environ.get("ALGODISTILL_OWNERS", "").split(",")
    return {n.strip().lower() for n in names if n.strip()}


def credentials() -> list[tuple[str, str]] | None:
    """Gradio login accounts from ``ALGODISTILL_AUTH`` or ``ALGODISTILL_AUTH_FILE``, or None. A malformed
    entry is an error at start, not an open door."""
    text = os.environ.get("ALGODISTILL_AUTH", "")
    source = "ALGODISTILL_AUTH"
    if not text and os.environ.get("ALGODISTILL_AUTH_FILE"):
        source = "ALGODISTILL_AUTH_FILE"
        text = Path(os.environ["ALGODISTILL_AUTH_FILE"]).read_text(encoding="utf-8").replace("\n", ",")
    pairs = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password:
            raise ValueError(f"{source}: each account is user:password (got an entry without both)")
        pairs.append((user.strip(), password))
    return pairs or None


def caller(request=None) -> str | None:
    """The logged-in name behind the request Gradio is serving (Gradio login or Hugging Face OAuth), or
    None for an anonymous one."""
    from gradio.context import LocalContext
    request = request if request is not None else LocalContext.request.get(None)
    if request is None:
        return None
    if getattr(request, "username", None):
        return request.username
    from gradio.helpers import _session_from_request
    from gradio.oauth import _get_valid_oauth_info_from_session
    info = _get_valid_oauth_info_from_session(_session_from_request(request))
    user = (info or {}).get("userinfo") or {}
    return user.get("preferred_username") or user.get("name")


def is_owner(request=None) -> bool:
    if not hosted():
        return True
    from gradio.context import LocalContext
    if request is None and LocalContext.request.get(None) is None:
        return False  # hosted and not serving a request: nothing vouches for the caller
    name = caller(request)
    if name is None:
        return False
    if on_spaces():
        return name.lower() in owners()
    return credentials() is not None  # behind Gradio's login, whoever got in owns the app


def require_owner(action: str) -> None:
    """Refuse ``action`` (words: 'start a training run') unless the caller owns the app."""
    if not is_owner():
        raise Refused(f"Visitors can look at everything here but not {action}. {how_to_own()}")


def how_to_own() -> str:
    if on_spaces():
        return "The Space's owner can log in with Hugging Face (top of the page)."
    if credentials():
        return "Log in with an owner's account."
    return "This app is served read-only; run it yourself to train and evaluate (see the README)."


def role_line() -> str:
    """What the current caller may do, for the top of the page (empty when local)."""
    if not hosted():
        return ""
    if is_owner():
        return f"Logged in as **{caller()}**: you own this app (train, evaluate, upload, delete)."
    return "You are visiting: browse every run, loss curve, grid and sample. " + how_to_own()


@contextlib.contextmanager
def collecting():
    """While the app is built, ``owner_area`` columns are collected; yields their list."""
    global _areas
    _areas, outer = [], _areas
    try:
        yield _areas
    finally:
        _areas = outer


def owner_area(**kwargs):
    """A ``gr.Column`` holding write controls: shown to the owner, hidden from a visitor's page. Only the
    look: the handlers behind these controls check the caller themselves."""
    column = gr.Column(**kwargs)
    if _areas is not None:
        _areas.append(column)
    return column


def owner_only(block):
    """``block`` (an accordion, a row) shown to the owner only, as ``owner_area``'s column: only the look."""
    if _areas is not None:
        _areas.append(block)
    return block


def allowed_models() -> list[str]:
    """Models a hosted app may load: the default hub model, SmolLM2, the offline names, and the hub ids in
    ``ALGODISTILL_MODELS`` (comma-separated)."""
    from ..models import DEFAULT_MODEL, OFFLINE_FILES
    extra = [m.strip() for m in os.environ.get("ALGODISTILL_MODELS", "").split(",") if m.strip()]
    return list(dict.fromkeys([DEFAULT_MODEL, HUB_SMOLLM2, *OFFLINE_FILES, *extra]))


def check_model(spec: str | None) -> None:
    """Hosted: a model spec must be on the allow list (checked before anything looks at the disk or the Hub,
    so that errors cannot tell which server paths exist)."""
    if hosted() and spec and spec.strip() not in allowed_models():
        raise ValueError(f"this hosted app loads only these models: {', '.join(allowed_models())}")


def check_adapter(adapter: str | None, known: list[str]) -> None:
    """Hosted: an adapter must be one of ``known`` (the adapters of this store's training runs)."""
    if hosted() and adapter and adapter.strip() not in known:
        raise ValueError("choose the adapter of one of this app's training runs")


_PATH = re.compile(r"(?<![\w.:/])(?:~|/)(?:[\w.@+-]+/)+[\w.@+-]*")


def public(text: str) -> str:
    """``text`` as shown to a caller: hosted, absolute paths become their last component, so messages and
    logs do not map the server's file system."""
    if not hosted() or not text:
        return text
    return _PATH.sub(lambda m: "…/" + (m.group(0).rstrip("/").rsplit("/", 1)[-1] or ""), text)


def upload_limits() -> tuple[int, int]:
    """(largest upload, all kept trace uploads together), in bytes: ``ALGODISTILL_MAX_UPLOAD_MB`` (default
    100: a bundle with its adapter is ~35 MB for Qwen2.5-0.5B) and ``ALGODISTILL_UPLOAD_QUOTA_MB`` (default
    500)."""
    def megabytes(name: str, default: float) -> int:
        try:
            value = float(os.environ.get(name) or default)
        except ValueError:
            raise ValueError(f"{name} must be a number of megabytes") from None
        return int(max(value, 0) * 1024 * 1024)
    return megabytes("ALGODISTILL_MAX_UPLOAD_MB", 100), megabytes("ALGODISTILL_UPLOAD_QUOTA_MB", 500)


def launch_options() -> dict:
    """``demo.launch`` arguments for the configured mode: the upload cap always (Gradio refuses bigger files
    before they are written), and Gradio's login when hosted off Spaces with accounts configured."""
    options = {"max_file_size": upload_limits()[0]}
    if hosted() and not on_spaces() and credentials():
        options["auth"] = credentials()
    return options
