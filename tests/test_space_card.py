"""The README's front matter is the Space's configuration: it must name the Gradio we pin and test, and the
fields a Space card shows (https://huggingface.co/docs/hub/spaces-config-reference)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def front_matter(text: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md must open with a YAML front matter block"
    return yaml.safe_load(match.group(1))


def pinned(requirement: str, text: str) -> str:
    match = re.search(rf"^{re.escape(requirement)}(?:\[[^\]]*\])?==([\w.]+)\s*$", text, re.M)
    assert match, f"requirements.txt must pin {requirement} with =="
    return match.group(1)


def test_the_space_runs_the_gradio_and_python_we_pin_and_test():
    card = front_matter((ROOT / "README.md").read_text(encoding="utf-8"))
    assert card["sdk"] == "gradio" and card["app_file"] == "app.py" and (ROOT / card["app_file"]).is_file()
    # a Space installs the sdk_version itself, over requirements.txt: the two must agree
    assert str(card["sdk_version"]) == pinned("gradio", (ROOT / "requirements.txt").read_text())
    assert str(card["python_version"]) == "3.11"
    assert card["hf_oauth"] is True  # the owner's "Sign in with Hugging Face"


def test_the_card_shows_a_description_license_base_models_and_tags():
    from algodistill.models import DEFAULT_MODEL, HUB_IDS
    card = front_matter((ROOT / "README.md").read_text(encoding="utf-8"))
    assert 0 < len(card["short_description"]) <= 60  # the Hub's limit
    assert card["license"] == "apache-2.0" and "Apache License" in (ROOT / "LICENSE").read_text()
    assert DEFAULT_MODEL in card["models"] and set(card["models"]) <= {DEFAULT_MODEL, *HUB_IDS.values()}
    assert card["tags"] and all(re.fullmatch(r"[a-z0-9-]+", tag) for tag in card["tags"])
    assert card["suggested_hardware"] in {"t4-small", "t4-medium", "l4x1", "a10g-small", "a10g-large"}


def test_a_disagreeing_pin_is_caught():
    text = "---\nsdk: gradio\nsdk_version: 6.30.0\n---\n"
    assert str(front_matter(text)["sdk_version"]) != pinned("gradio", "gradio[oauth]==6.31.0\n")
