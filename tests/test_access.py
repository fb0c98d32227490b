"""Hosted mode: a visitor reads, the owner writes, and the check happens in the handler on the server.

The app is launched for real and called over HTTP as an anonymous visitor would (gradio_client for the
named endpoints, the raw queue protocol for the private ones, which the browser uses and anyone can call).
Every write call must be refused with nothing created, changed or kept; the same calls as the owner (Gradio
login) succeed."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from algodistill.ui import access

TRACE = Path(__file__).resolve().parent.parent / "assets" / "traces" / "reference.jsonl"
HOSTILE_CODE = "import os\nos.system('touch /tmp/visitor-was-here')\ndef f(x):\n    return x\n"


@pytest.fixture(autouse=True)
def _local_again():
    yield
    access.configure(False)


class Caller:
    """Calls any event handler of a launched app by its index, as the page's own JavaScript does."""

    def __init__(self, demo, auth: tuple[str, str] | None = None):
        self.demo, self.url = demo, demo.local_url
        self.http = httpx.Client(base_url=self.url, timeout=120)
        if auth:
            reply = self.http.post("login", data={"username": auth[0], "password": auth[1]})
            assert reply.status_code == 200, reply.text

    def index(self, name: str, api_name: str | None = None) -> int:
        found = [i for i, f in self.demo.fns.items() if f.name == name and (api_name is None or f.api_name == api_name)]
        assert found, f"no handler {name} ({api_name})"
        return found[0]

    def upload(self, path: Path) -> dict:
        with open(path, "rb") as f:
            reply = self.http.post("gradio_api/upload", files={"files": (path.name, f)})
        assert reply.status_code == 200, reply.text
        return {"path": reply.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def call(self, name: str, data: list, api_name: str | None = None) -> dict:
        session = uuid.uuid4().hex
        reply = self.http.post("gradio_api/queue/join", json={"data": data, "fn_index": self.index(name, api_name),
                                                               "session_hash": session})
        assert reply.status_code == 200, reply.text
        with self.http.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as events:
            for line in events.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
        raise AssertionError("no reply")


def launch(hosted: bool, monkeypatch, auth: str | None = None, models: str = ""):
    from algodistill.ui import build_app, common
    monkeypatch.setenv("ALGODISTILL_MODELS", models)
    if auth:
        monkeypatch.setenv("ALGODISTILL_AUTH", auth)
    common._stores.clear()
    demo = build_app(hosted=hosted)
    demo.launch(prevent_thread_lock=True, quiet=True, **access.launch_options())
    return demo


def a_store_with_runs(db, tiny_model_dir):
    """A finished training run with an adapter dir, and a scored evaluation: what the calls act on."""
    from algodistill.evaluate import run_scoring
    from algodistill.problems import grid
    from algodistill.sandbox import Limits
    from algodistill.train_sft import SFTSettings
    from algodistill.verify import fenced
    adapter = Path(db.path).parent / "outputs" / "1-sft"
    adapter.mkdir(parents=True)
    train = db.create_run("train", asdict(SFTSettings(model=str(tiny_model_dir))), name="sft", status="completed",
                          model=str(tiny_model_dir), adapter=str(adapter))
    items = [(inst, fenced(inst.reference)) for inst in grid(["rpn"], [1])]
    evaluation = run_scoring(db, items, name="reference", model="ref", settings={"per_cell": 1}, limits=Limits())["run"]
    kept = Path(db.path).parent / "uploads" / "kept-0123456789.jsonl"
    kept.parent.mkdir(parents=True)
    kept.write_text(TRACE.read_text().splitlines()[0] + "\n")
    return train, evaluation, kept


def a_bundle(db, evaluation: int, tmp_path: Path) -> Path:
    from algodistill.bundle import export_bundle
    path = tmp_path / "elsewhere" / "bundle.zip"
    path.parent.mkdir()
    export_bundle(db, [evaluation], path)
    return path


def snapshot(db) -> dict:
    home = Path(db.path).parent
    return {"runs": [(r["id"], r["status"], r.get("name"), r.get("note")) for r in db.runs(limit=1000)],
            "samples": sorted(len(db.samples(r["id"])) for r in db.runs(kind="eval", limit=1000)),
            "files": sorted(str(p.relative_to(home)) for p in home.rglob("*")
                      if p.is_file() and not p.name.startswith("runs.db") and not {"gradio-tmp", "elsewhere"} & set(p.parts))}


def write_calls(caller: Caller, train: int, evaluation: int, kept: Path, hostile: Path, bundle: Path) -> dict:
    """Every write handler of the app, with what a caller would send (hostile where it can be)."""
    from algodistill.traces import BUNDLED
    sample = [["rpn", 1, 999, 0, 0]]
    model = access.allowed_models()[-1]  # valid values: the handler's own check must be what refuses
    form = [model, BUNDLED.name, "x", 1, 2e-4, 4, 8, 0.05, 1, 1, 256, 0.1, 1, "cpu", 0, 512, "contract", False, "none"]
    return {
        ("launch", "start_training"): form,
        ("launch_grpo", "start_grpo"): [model, "", "x", ["rpn"], ["1"], 1, 1, 2, 1, 2, 16, 5e-5, 0.0, 1.0, 4, 8,
                                        0.0, 0.1, "cpu", 0, 512, "contract", False, "none"],
        ("launch", "start_evaluation"): [model, "", False, ["rpn"], ["1"], 1, 16, 0, 1, 0.0, 1.0, "contract"],
        ("evaluate_adapter", "evaluate_adapter"): [train],
        ("stop", "stop_training"): [train],
        ("relaunch", "resume_training"): [train],
        ("halted", "stop_evaluation"): [evaluation],
        ("relaunch", "resume_evaluation"): [evaluation, evaluation],
        ("rerun_sample", None): [evaluation, sample[0], HOSTILE_CODE],
        ("uploaded", "uploaded"): [caller.upload(hostile)],
        ("uploaded", "uploaded_1"): [caller.upload(hostile)],
        ("deleted", None): [kept.name],
        ("import_bundle_upload", None): [caller.upload(bundle)],
        ("<lambda>", "rename_run"): [f"#{evaluation}", "renamed by a visitor"],
        ("<lambda>", "note_run"): [f"#{evaluation}", "a visitor's note"],
        ("<lambda>", "delete_run"): [f"#{evaluation}", str(evaluation)],
        ("launch", "generate_traces"): ["local model", model, "", "", "OPENAI_API_KEY", ["rpn"], [1], 1, 1, 0.0, 1.0,
                                        16, 1, ["contract"]],
        ("stop", "stop_trace_generation"): [None],
        ("pushed", "push_to_hub"): [f"#{train}", "visitor/stolen-adapter", False],
    }


def test_every_write_call_from_a_visitor_is_refused_and_leaves_nothing(db, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    train, evaluation, kept = a_store_with_runs(db, tiny_model_dir)
    hostile = tmp_path / "visitor.jsonl"
    hostile.write_text(TRACE.read_text())
    before = snapshot(db)
    demo = launch(True, monkeypatch, models=str(tiny_model_dir))
    try:
        caller = Caller(demo)
        calls = write_calls(caller, train, evaluation, kept, hostile, a_bundle(db, evaluation, tmp_path))
        for (name, api_name), data in calls.items():
            reply = caller.call(name, data, api_name)
            # refused as an error, or as the handler's own "not done: ..." message
            assert "Visitors can look" in json.dumps(reply["output"]), (name, api_name, reply)
        # the named endpoints through the official client too
        from gradio_client import Client
        client = Client(demo.local_url, verbose=False)
        with pytest.raises(Exception, match="Visitors can look"):
            client.predict(f"#{evaluation}", "x", api_name="/rename_run")
    finally:
        demo.close()
    assert snapshot(db) == before
    assert not Path("/tmp/visitor-was-here").exists()
    content = hostile.read_bytes()
    uploaded = [p for p in (tmp_path / "gradio-tmp").rglob("*") if p.is_file() and p.read_bytes() == content]
    assert uploaded == [], "a refused upload must not be kept in Gradio's temporary directory either"


def test_the_owner_logged_in_makes_the_same_calls(db, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio-tmp"))
    train, evaluation, kept = a_store_with_runs(db, tiny_model_dir)
    upload = tmp_path / "owner.jsonl"
    upload.write_text("".join(TRACE.read_text().splitlines(keepends=True)[:3]))
    demo = launch(True, monkeypatch, auth="owner:s3cret", models=str(tiny_model_dir))
    try:
        anonymous = httpx.get(demo.local_url + "config", timeout=30)
        assert anonymous.status_code == 401  # behind Gradio's login nothing is served without it
        caller = Caller(demo, auth=("owner", "s3cret"))
        calls = write_calls(caller, train, evaluation, kept, upload, a_bundle(db, evaluation, tmp_path))
        for key in [("import_bundle_upload", None), ("uploaded", "uploaded_1"), ("<lambda>", "rename_run"),
                    ("<lambda>", "note_run"), ("rerun_sample", None), ("deleted", None)]:
            reply = caller.call(*key[:1], calls[key], key[1])
            assert reply["success"] is True, (key, reply)
        assert db.get_run(evaluation)["name"] == "renamed by a visitor"
        imported = [r for r in db.runs(limit=100) if r["settings"].get("imported")]
        assert len(imported) == 1 and imported[0]["id"] not in (train, evaluation)
        assert not kept.exists()
        assert any(p.name.startswith("owner-") for p in (Path(db.path).parent / "uploads").iterdir())
        # the owner's training starts (a tiny model on the allow list) and stops
        reply = caller.call("launch", calls[("launch", "start_training")], "start_training")
        assert reply["success"] is True and "Started run" in json.dumps(reply["output"]), reply
        started = max(r["id"] for r in db.runs(kind="train", limit=100))
        assert started != train
        reply = caller.call("stop", [started], "stop_training")
        assert reply["success"] is True and "stop requested" in json.dumps(reply["output"]), reply
        # a model or an adapter off the allow list never gets as far as the disk
        off_list = calls[("launch", "start_evaluation")]
        for model, adapter in (("deepseek-ai/DeepSeek-V3", ""), (access.allowed_models()[0], "/etc")):
            reply = caller.call("launch", [model, adapter] + off_list[2:], "start_evaluation")
            assert reply["success"] is False and str(tmp_path) not in json.dumps(reply["output"]), reply
        assert not db.runs(kind="eval", status="queued") and not db.runs(kind="eval", status="running")
        reply = caller.call("<lambda>", calls[("<lambda>", "delete_run")], "delete_run")
        assert reply["success"] is True
        with pytest.raises(KeyError):
            db.get_run(evaluation)
    finally:
        demo.close()


def test_local_use_needs_no_login(db, tiny_model_dir, monkeypatch):
    _, evaluation, _ = a_store_with_runs(db, tiny_model_dir)
    demo = launch(False, monkeypatch)
    try:
        reply = Caller(demo).call("<lambda>", [f"#{evaluation}", "mine"], "rename_run")
        assert reply["success"] is True and db.get_run(evaluation)["name"] == "mine"
    finally:
        demo.close()


class FakeRequest:
    def __init__(self, session: dict | None = None, username: str | None = None):
        self.session, self.username = session or {}, username


def serving(request):
    from gradio.context import LocalContext
    return LocalContext.request.set(request)


def test_on_spaces_the_author_and_listed_owners_own_it(monkeypatch):
    from gradio.context import LocalContext
    monkeypatch.setenv("SPACE_ID", "alice/algodistill")
    monkeypatch.setenv("SPACE_AUTHOR_NAME", "alice")
    monkeypatch.setenv("ALGODISTILL_OWNERS", "Bob, carol")
    access.configure(True)

    def owner(user: str | None) -> bool:
        session = {"oauth_info": {"userinfo": {"preferred_username": user}, "expires_at": None}} if user else {}
        token = serving(FakeRequest(session))
        try:
            return access.is_owner()
        finally:
            LocalContext.request.reset(token)

    assert owner("alice") and owner("bob") and owner("Carol")
    assert not owner("mallory") and not owner(None)
    assert not access.is_owner()  # hosted and no request being served: refused, not trusted
    with pytest.raises(access.Refused, match="log in with Hugging Face"):
        access.require_owner("start a training run")


def test_hosted_is_decided_by_where_the_app_listens(monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("ALGODISTILL_HOSTED", raising=False)
    assert not access.hosted_for("127.0.0.1") and not access.hosted_for("localhost") and not access.hosted_for(None)
    assert access.hosted_for("0.0.0.0") and access.hosted_for("192.168.1.5")
    monkeypatch.setenv("ALGODISTILL_HOSTED", "1")
    assert access.hosted_for("127.0.0.1")
    monkeypatch.delenv("ALGODISTILL_HOSTED")
    monkeypatch.setenv("SPACE_ID", "alice/x")
    assert access.hosted_for("127.0.0.1")


def test_allow_list_credentials_and_paths_in_messages(monkeypatch, tmp_path):
    access.configure(True)
    access.check_model("Qwen/Qwen2.5-Coder-0.5B-Instruct")
    access.check_model("smollm2-135m")
    for spec in ("deepseek-ai/DeepSeek-V3", "/root/.cache/model", "../../etc", "Qwen/Qwen2.5-Coder-0.5B-Instruct/.."):
        with pytest.raises(ValueError, match="only these models"):
            access.check_model(spec)
    monkeypatch.setenv("ALGODISTILL_MODELS", "org/extra-model")
    access.check_model("org/extra-model")
    with pytest.raises(ValueError, match="adapter of one of this app's training runs"):
        access.check_adapter("/etc", ["/home/x/outputs/1-sft"])
    assert access.public("cannot read /root/.cache/algodistill/x.gguf: gone") == "cannot read …/x.gguf: gone"
    assert access.public("see https://huggingface.co/docs/x") == "see https://huggingface.co/docs/x"
    monkeypatch.setenv("ALGODISTILL_AUTH", "owner:pw, second:p:w")
    assert access.credentials() == [("owner", "pw"), ("second", "p:w")]
    monkeypatch.setenv("ALGODISTILL_AUTH", "nopassword")
    with pytest.raises(ValueError, match="user:password"):
        access.credentials()
    monkeypatch.delenv("ALGODISTILL_AUTH")
    file = tmp_path / "accounts"
    file.write_text("owner:pw\n\n")
    monkeypatch.setenv("ALGODISTILL_AUTH_FILE", str(file))
    assert access.credentials() == [("owner", "pw")]
    access.configure(False)
    assert access.public("/root/x/y") == "/root/x/y"  # local: the user's own paths are useful


def test_uploads_are_capped(db, tmp_path, monkeypatch):
    from algodistill.ui.common import accept_upload
    monkeypatch.setenv("ALGODISTILL_MAX_UPLOAD_MB", "0.001")
    big = tmp_path / "big.jsonl"
    big.write_text(TRACE.read_text())
    kept, text = accept_upload(str(big))
    assert kept is None and "capped at" in text
    monkeypatch.setenv("ALGODISTILL_MAX_UPLOAD_MB", "10")
    monkeypatch.setenv("ALGODISTILL_UPLOAD_QUOTA_MB", "0.001")
    kept, text = accept_upload(str(big))
    assert kept is None and "quota" in text
    assert not (Path(db.path).parent / "uploads").exists() or not list((Path(db.path).parent / "uploads").iterdir())


def test_a_visitors_page_names_no_server_path(db, tiny_model_dir, tmp_path, monkeypatch):
    from algodistill.traces import BUNDLED
    a_store_with_runs(db, tiny_model_dir)
    demo = launch(True, monkeypatch)
    try:
        caller = Caller(demo)
        page = caller.http.get("config").text
        tables = json.dumps([caller.call(name, [], None)["output"] for name in ("trace_set_rows", "runs_rows")])
    finally:
        demo.close()
    for secret in (str(tmp_path), str(BUNDLED.parent)):
        assert secret not in page and secret not in tables
    assert "kept-0123456789.jsonl" in page and "#1" in page  # the sets and adapters are still offered, by name


def test_on_spaces_the_page_offers_the_hugging_face_login_and_refuses_the_anonymous(db, tiny_model_dir, monkeypatch):
    _, evaluation, _ = a_store_with_runs(db, tiny_model_dir)
    import gradio.oauth
    monkeypatch.setenv("SPACE_ID", "alice/algodistill")
    monkeypatch.setenv("SYSTEM", "spaces")  # Gradio's real OAuth routes, as a Space with hf_oauth gets them
    monkeypatch.setenv("SPACE_AUTHOR_NAME", "alice")
    for name, value in (("OAUTH_CLIENT_ID", "id"), ("OAUTH_CLIENT_SECRET", "secret"), ("OAUTH_SCOPES", "openid"),
                        ("OPENID_PROVIDER_URL", "https://huggingface.co")):
        monkeypatch.setattr(gradio.oauth, name, value)
    demo = launch(access.hosted_for("127.0.0.1"), monkeypatch)
    try:
        caller = Caller(demo)
        assert "Sign in with Hugging Face" in caller.http.get("config").text
        reply = caller.call("<lambda>", [f"#{evaluation}", "x"], "rename_run")
        assert "log in with Hugging Face" in json.dumps(reply["output"])
        assert db.get_run(evaluation)["name"] == "reference"
    finally:
        demo.close()
