"""Pushing an adapter to the Hub (issue 22 §2): the folder and card it would push, and every call up to the upload.
Nothing here reaches the Hub: the upload itself is untested here (docs/hosting.md says so)."""

import json
import sys
from pathlib import Path

import pytest

from algodistill import hub
from algodistill.card import write_model_card
from algodistill.train_sft import SFTSettings
from tests.test_learned import evaluated  # noqa: F401 (the fixture: an adapter evaluated in every style)


class Recorder:
    """An HfApi stand-in: records each call and, at upload time, what the folder holds."""

    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        if self.fail:
            raise self.fail
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, folder_path, repo_id, **kwargs):
        files = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}
        self.calls.append(("upload_folder", repo_id, dict(kwargs, files=files)))
        return type("Commit", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/abc"})()


@pytest.fixture
def trained(store, evaluated, tmp_path):  # noqa: F811
    """The evaluated adapter as a training run would leave it: PEFT files, tokenizer, card, a stale checkpoint."""
    import torch
    from safetensors.torch import save_file
    adapter, runs = evaluated
    out = Path(adapter)
    (out / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "models" / "m"),
                                                         "r": 16, "peft_type": "LORA"}))
    save_file({"base_model.model.lora_A.weight": torch.ones(2, 2)}, str(out / "adapter_model.safetensors"))
    (out / "tokenizer_config.json").write_text("{}")
    (out / "checkpoint-3").mkdir()
    (out / "checkpoint-3" / "optimizer.pt").write_bytes(b"x" * 100)
    settings = SFTSettings(model="m", traces=str(tmp_path / "uploads" / "mine.jsonl"), output_dir=str(out))
    write_model_card(out, settings, {"traces": {"file": str(tmp_path / "uploads" / "mine.jsonl"), "kept": 8,
                                                "rejected": 0}, "steps": 3, "max_steps": 3, "final_loss": 0.5}, 1)
    train = [r for r in store.runs(kind="train", limit=10) if r["adapter"] == adapter][0]["id"]
    return train, out, tmp_path


def test_the_folder_holds_the_adapter_and_a_card_with_its_results_and_no_local_path(store, trained):
    train, out, tmp_path = trained
    folder, warnings = hub.hub_folder(store, train, "alice/rpn-lora", tmp_path / "push")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["README.md", "adapter_config.json", "adapter_model.safetensors", "algodistill.json",
                     "tokenizer_config.json"]  # no checkpoint, no optimizer state
    card = (folder / "README.md").read_text()
    assert "## Learned vs forgot" in card and "| grid · contract |" in card
    assert "4/6" in card and "5/6" in card and "+16.7 pts" in card  # base, adapter and change, with intervals
    assert "%-" in card and "## Evaluation" in card and "## Load it" in card
    assert card.index("## Learned vs forgot") < card.index("## Load it") and "Not evaluated yet" not in card
    assert "| output_dir | .../1-sft |" in card and "| traces | .../mine.jsonl |" in card
    assert 'PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("m"), "alice/rpn-lora")' in card
    for path in folder.iterdir():
        assert str(tmp_path) not in path.read_text(errors="replace"), path.name  # nothing of this machine
    assert any("not a Hub id" in w for w in warnings)  # a local base model is said, not hidden
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == "m"


def test_a_push_creates_the_repo_and_uploads_that_folder(store, trained):
    train, out, _ = trained
    api = Recorder()
    result = hub.push_adapter(store, train, "alice/rpn-lora", private=True, api=api)
    (create, repo, kwargs), (upload, repo2, sent) = api.calls
    assert (create, repo, kwargs) == ("create_repo", "alice/rpn-lora",
                                      {"repo_type": "model", "private": True, "exist_ok": True})
    assert upload == "upload_folder" and repo2 == "alice/rpn-lora" and sent["repo_type"] == "model"
    assert "README.md" in sent["files"] and b"Learned vs forgot" in sent["files"]["README.md"]
    assert sent["files"]["adapter_model.safetensors"] == (out / "adapter_model.safetensors").read_bytes()
    assert result["url"] == "https://huggingface.co/alice/rpn-lora" and result["commit"].endswith("/commit/abc")
    assert "adapter_model.safetensors" in result["files"]


@pytest.mark.parametrize("repo", ["rpn-lora", "alice/", "a/b/c", "alice/../x", "alice/x y", "", "alice/x.git"])
def test_a_bad_repository_name_is_refused_before_anything(store, trained, repo):
    api = Recorder()
    with pytest.raises(hub.HubError, match="USER/NAME"):
        hub.push_adapter(store, trained[0], repo, api=api)
    assert api.calls == []


def test_what_cannot_be_pushed_says_why(store, trained, monkeypatch):
    train, _, _ = trained
    evaluation = store.runs(kind="eval", limit=1)[0]["id"]
    with pytest.raises(hub.HubError, match="is an evaluation"):
        hub.push_adapter(store, evaluation, "alice/x", api=Recorder())
    with pytest.raises(hub.HubError, match="no run 999"):
        hub.push_adapter(store, 999, "alice/x", api=Recorder())
    empty = store.create_run("train", {}, name="never saved", status="failed")
    with pytest.raises(hub.HubError, match="no saved adapter"):
        hub.push_adapter(store, empty, "alice/x", api=Recorder())
    with pytest.raises(hub.HubError, match="the Hub refused the push to alice/x: PermissionError: read-only token"):
        hub.push_adapter(store, train, "alice/x", api=Recorder(fail=PermissionError("read-only token")))
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(hub.HubError, match="HF_TOKEN"):
        hub.push_adapter(store, train, "alice/x")  # no token anywhere: refused before the Hub is asked


def test_the_command_line_pushes_with_to_hub(store, trained, monkeypatch, capsys):
    from algodistill import cli
    train, _, _ = trained
    api = Recorder()
    import huggingface_hub
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: api)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_test")
    assert cli.main(["export", str(train), "--to-hub", "alice/rpn-lora", "--db", store.path]) == 0
    out, err = capsys.readouterr()
    assert "pushed the adapter of run" in out and "https://huggingface.co/alice/rpn-lora" in out
    assert "warning: the base model is m, not a Hub id" in err
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    assert cli.main(["export", str(train), "--db", store.path]) == 2
    assert "--out FILE.zip" in capsys.readouterr().err
    assert cli.main(["export", str(train), "1", "--to-hub", "alice/x", "--db", store.path]) == 2
    assert "one RUN" in capsys.readouterr().err


def test_the_runs_tab_pushes_for_the_owner_only(store, trained, monkeypatch):
    from algodistill.ui import access, common, runs_tab
    train, _, _ = trained
    monkeypatch.setenv("ALGODISTILL_DB", store.path)
    common._stores.clear()
    sent = []
    monkeypatch.setattr(hub, "push_adapter", lambda s, run, repo, private, hub_token: sent.append(
        (run, repo, private, hub_token)) or {"repo": repo, "url": f"https://huggingface.co/{repo}", "files": ["a"],
                                             "warnings": ["the base model is m, not a Hub id"]})
    text = runs_tab.push_to_hub(f"#{train}", "alice/x", True, "hf_login")
    assert sent == [(train, "alice/x", True, "hf_login")]
    assert "Pushed the adapter of run" in text and "(https://huggingface.co/alice/x)" in text and "⚠️" in text
    assert runs_tab.push_to_hub(None, "alice/x").startswith("Choose a training run")
    access.configure(True)
    try:
        with pytest.raises(access.Refused):
            runs_tab.push_to_hub(f"#{train}", "alice/y")  # a visitor, or a caller of the API with no login
    finally:
        access.configure(False)
    assert len(sent) == 1
