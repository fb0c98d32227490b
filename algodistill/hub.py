"""Push a trained adapter to the Hugging Face Hub as a model repository, with a model card a visitor of the Hub
can trust: the base model, the traces and recipe, every evaluation with its 95% interval, and the adapter's
learned-vs-forgot table against the base model (``learned.py``).

``hub_folder`` writes what would be pushed (the PEFT files, the tokenizer, ``algodistill.json`` and
``README.md``) into a folder, with no path of this machine in it; ``push_adapter`` uploads that folder through
``huggingface_hub.HfApi`` (``create_repo`` then ``upload_folder``). The token comes from the environment
(``HF_TOKEN``, or the one ``hf auth login`` saved) or, in the app, from the owner's Hugging Face login; never
from a form field. Nothing reaches the Hub from the tests: they check the folder and the calls made up to the
upload."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

from .models import HUB_IDS
from .store import Store
from .traces import HUB_ID as REPO_ID  # one spelling of user/name

# what a PEFT adapter folder holds that a user of the Hub needs (checkpoints and optimizer state stay here)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "algodistill.json", "tokenizer.json",
                 "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt",
                 "added_tokens.json")


class HubError(ValueError):
    """Why an adapter cannot be pushed: in words, with what to do."""


def check_repo_id(repo_id: str) -> str:
    repo_id = (repo_id or "").strip()
    if not REPO_ID.fullmatch(repo_id) or ".." in repo_id or repo_id.endswith((".git", "-", ".")):
        raise HubError(f"a Hub repository is USER/NAME (letters, digits, '-', '_', '.'), got {repo_id[:100]!r}")
    return repo_id


def _training_run(store: Store, run_id: int) -> dict:
    try:
        run = store.get_run(int(run_id))
    except (KeyError, ValueError, TypeError):
        raise HubError(f"no run {run_id} in {store.path}") from None
    if run["kind"] != "train":
        raise HubError(f"run {run['id']} is an evaluation; push the training run that wrote the adapter")
    adapter = Path(run.get("adapter") or "")
    if run["status"] not in ("completed", "stopped") or not (adapter / "adapter_model.safetensors").is_file():
        raise HubError(f"run {run['id']} ({run['status']}) has no saved adapter here to push")
    return run


def _public(text: str, adapter: Path, repo_id: str) -> str:
    """The card as the Hub shows it: the adapter loaded by its repository id, no path of this machine."""
    from .bundle import _strip_paths
    for spelled in (f'"{adapter}"', f"--adapter {adapter}"):  # where the card loads or evaluates it
        text = text.replace(spelled, spelled.replace(str(adapter), repo_id))
    return _strip_paths(text)


def learned_section(store: Store, adapter: Path) -> str:
    """The adapter's learned-vs-forgot table as markdown ('' when it was never evaluated here)."""
    from .learned import COLUMNS, LEGEND, headline, learned_vs_forgot, table_rows
    try:
        rows = learned_vs_forgot(store, str(adapter))
    except ValueError:
        return ""
    shown = [c for c in COLUMNS if c not in ("runs", "note")]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    for row in table_rows(rows):
        lines.append("| " + " | ".join(cell.replace("|", "/") for cell in row[:len(shown)]) + " |")
    return ("## Learned vs forgot\n\nThe adapter against its base model on the very same instances "
            f"(algodistill's execution-verified grid, 5 hidden tests per problem, and HumanEval): "
            f"{headline(rows)}.\n\n" + "\n".join(lines) + f"\n\n{LEGEND}\n")


def hub_folder(store: Store, run_id: int, repo_id: str, dest: str | Path | None = None) -> tuple[Path, list[str]]:
    """Write what ``push_adapter`` would upload for training run ``run_id`` into ``dest`` (a new temporary folder
    by default): (the folder, warnings). The card is the adapter's own (``card.write_model_card``, with its
    evaluations) plus its learned-vs-forgot table and a front matter the Hub reads (base model, library, tags)."""
    repo_id = check_repo_id(repo_id)
    run = _training_run(store, run_id)
    adapter = Path(run["adapter"])
    folder = Path(dest) if dest else Path(tempfile.mkdtemp(prefix="algodistill-hub-"))
    folder.mkdir(parents=True, exist_ok=True)
    warnings = []
    for name in ADAPTER_FILES:
        if (adapter / name).is_file():
            shutil.copy2(adapter / name, folder / name)
    config = json.loads((folder / "adapter_config.json").read_text())
    base = HUB_IDS.get(run["model"], config.get("base_model_name_or_path") or run["model"])
    if not REPO_ID.fullmatch(str(base)):
        warnings.append(f"the base model is {Path(str(base)).name}, not a Hub id: people who load this adapter "
                        "need that model under the same name")
        base = Path(str(base)).name
    config["base_model_name_or_path"] = base
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))
    if (folder / "algodistill.json").is_file():
        from .bundle import _without_paths
        meta = _without_paths(json.loads((folder / "algodistill.json").read_text()))
        (folder / "algodistill.json").write_text(json.dumps(meta, indent=2, default=str))
    card = (adapter / "README.md").read_text(encoding="utf-8") if (adapter / "README.md").is_file() else ""
    card = re.sub(r"^base_model: .*$", f"base_model: {base}", card, count=1, flags=re.M)
    learned = learned_section(store, adapter)
    if not learned:
        warnings.append("the adapter was never evaluated here: the card has no results "
                        f"(python -m algodistill eval --adapter {adapter.name} --compare-base --prompt-style all)")
    marker = "\n## Load it"
    card = card.replace(marker, f"\n{learned}{marker}", 1) if learned and marker in card else card + learned
    if learned:  # evaluated from the app or another store: the card's placeholder would say otherwise
        card = re.sub(r"^Not evaluated yet: .*$", "Results: see *Learned vs forgot* below.", card, count=1, flags=re.M)
    (folder / "README.md").write_text(_public(card, adapter, repo_id), encoding="utf-8")
    return folder, warnings


def token(explicit: str | None = None) -> str:
    """The token to push with: the app's (the owner's login), else ``HF_TOKEN`` or the saved login's; HubError
    saying how to give one when there is none."""
    if explicit:
        return explicit
    from huggingface_hub import get_token
    found = get_token()
    if not found:
        raise HubError("no Hugging Face token: set HF_TOKEN (a token with write access, "
                       "https://huggingface.co/settings/tokens) or run `hf auth login`")
    return found


def push_adapter(store: Store, run_id: int, repo_id: str, *, private: bool = False, hub_token: str | None = None,
                 api=None) -> dict:
    """Create ``repo_id`` (a model repository; kept if it exists) and upload the adapter folder of training run
    ``run_id`` to it: {"repo", "url", "commit", "files", "warnings"}. ``api``: an ``HfApi`` (tests pass a
    recorder; nothing here reaches the Hub otherwise)."""
    repo_id = check_repo_id(repo_id)
    folder, warnings = hub_folder(store, run_id, repo_id)
    try:
        if api is None:
            from huggingface_hub import HfApi
            api = HfApi(token=token(hub_token))
        repo = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                   commit_message=f"algodistill: the adapter of training run {run_id}")
    except HubError:
        raise
    except Exception as exc:  # the Hub's answer in words (auth, rate limit, network), not a traceback
        raise HubError(f"the Hub refused the push to {repo_id}: {type(exc).__name__}: {str(exc)[:300]}") from None
    finally:
        files = sorted(p.name for p in folder.iterdir())
        shutil.rmtree(folder, ignore_errors=True)
    return {"repo": repo_id, "url": str(getattr(repo, "url", repo) or f"https://huggingface.co/{repo_id}"),
            "commit": str(getattr(commit, "commit_url", commit)), "files": files, "warnings": warnings}
