"""Teacher traces by rejection sampling: an OpenAI-compatible endpoint (a small chat-completions server started
here), a local model (the tiny random one: plumbing, every sample fails), the job the app queues, and the offline
Qwen as a real teacher (slow, opt-in)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from algodistill import teacher as teacher_module
from algodistill.cli import main
from algodistill.evaluate import sample_seed
from algodistill.models import offline_models
from algodistill.problems import TRAIN_SEED, grid, make_instance
from algodistill.teacher import TeacherSettings, asked, generate_traces, retry_after
from algodistill.traces import verify_file
from algodistill.verify import fenced
from tests.conftest import ROOT

KEY = "sk-test-not-a-real-key-4242"


class FakeEndpoint:
    """A chat-completions server on 127.0.0.1 in a thread. ``answer(instance, sample)`` gives the reply's text
    (the instance is found by its prompt, the sample by its seed); ``script`` maps a request's number (from 0)
    to (status, headers) to send instead, and requests from ``hang_from`` on hang. Every request is logged with
    its time, and the most requests in flight at once are counted."""

    def __init__(self, instances, samples, answer):
        self.by_prompt = {inst.prompt: inst for inst in instances}
        self.by_seed = {sample_seed(TRAIN_SEED, asked(inst), k): k for inst in instances for k in range(samples)}
        self.answer, self.script, self.log, self.delay = answer, {}, [], 0.1
        self.hang_from = None  # requests from this number on are answered only after a minute
        self.lock, self.in_flight, self.most_in_flight = threading.Lock(), 0, 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    number = len(fake.log)
                    fake.log.append({"time": time.time(), "body": body, "path": self.path,
                                     "auth": self.headers.get("Authorization")})
                    fake.in_flight += 1
                    fake.most_in_flight = max(fake.most_in_flight, fake.in_flight)
                time.sleep(60 if fake.hang_from is not None and number >= fake.hang_from else fake.delay)
                with fake.lock:
                    fake.in_flight -= 1
                status, headers, payload = fake.reply(number, body, self.headers.get("Authorization"))
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, number, body, auth):
        if number in self.script:
            status, headers = self.script[number]
            return status, headers, {"error": {"message": f"scripted {status}", "type": "test"}}
        if auth != f"Bearer {KEY}":
            return 401, {}, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        prompt = body["messages"][-1]["content"]
        instance, sample = self.by_prompt[prompt], self.by_seed[body["seed"]]
        text = self.answer(instance, sample)
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                 "total_tokens": len(prompt.split()) + len(text.split()), "cost": 0.001}
        return 200, {}, {"id": f"chatcmpl-{number}", "object": "chat.completion", "created": int(time.time()),
                         "model": body["model"] + "-2026", "usage": usage,
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}]}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def answers(instance, sample):
    """fizzbuzz: the reference, the same code with prose around it (a duplicate), and the reference with an extra
    import (other code); everything else: a function that returns None."""
    if instance.problem == "fizzbuzz":
        return [fenced(instance.reference), "Here is my answer.\n\n" + fenced(instance.reference) + "\nDone.",
                fenced("import math\n" + instance.reference)][sample]
    return fenced(f"def {instance.entry_point}(*args):\n    return None\n")


@pytest.fixture
def endpoint(monkeypatch):
    made = []

    def make(settings, answer=answers):
        fake = FakeEndpoint(settings.instances()[0], settings.samples, answer)
        settings.base_url = fake.url
        made.append(fake)
        return fake
    monkeypatch.setenv("TEACHER_KEY", KEY)
    yield make
    for fake in made:
        fake.close()


def endpoint_settings(tmp_path, **changes):
    return TeacherSettings(**{"teacher": "openai:fake-teacher", "out": str(tmp_path / "teacher.jsonl"),
                              "api_key_env": "TEACHER_KEY", "problems": ["fizzbuzz", "reverse_string"],
                              "difficulties": [1, 2], "samples": 3, "temperature": 0.8, "top_p": 0.95,
                              "concurrency": 2, **changes})


def test_an_endpoint_teacher_keeps_the_verified_answers_once_each_with_their_provenance(tmp_path, endpoint):
    settings = endpoint_settings(tmp_path)
    fake = endpoint(settings)
    fake.script = {0: (429, {"Retry-After": "1"}), 1: (500, {})}  # the first request is throttled, the next fails
    report = generate_traces(settings, log=lambda m: None)

    assert report["status"] == "completed" and report["error"] is None
    assert (report["instances"], report["drawn"], report["judged"]) == (4, 12, 12)
    assert (report["passed"], report["kept"], report["duplicates"]) == (6, 4, 2)
    cells = {(c["problem"], c["difficulty"]): c for c in report["cells"]}
    assert cells[("fizzbuzz", 1)]["pass_rate"] == 1.0 and cells[("fizzbuzz", 2)]["kept"] == 2
    assert cells[("reverse_string", 2)]["pass_rate"] == 0.0 and cells[("reverse_string", 2)]["drawn"] == 3
    assert report["no_pass"] == [{"problem": "reverse_string", "difficulty": 1},
                                 {"problem": "reverse_string", "difficulty": 2}]
    assert report["retries"] == 2 and report["cost"] == pytest.approx(0.012)
    assert len(fake.log) == 14 and all(r["path"] == "/v1/chat/completions" for r in fake.log)
    assert fake.most_in_flight == 2  # --concurrency 2: never more, and used
    retried = [r for r in fake.log[2:] if r["body"]["seed"] == fake.log[0]["body"]["seed"]]
    assert retried and retried[0]["time"] - fake.log[0]["time"] >= 0.95  # it waited as Retry-After asked

    checks = verify_file(settings.out)  # the file is a trace set: every line verifies
    assert len(checks) == 4 and all(c.kept and not c.warnings for c in checks)
    assert not (tmp_path / "teacher.jsonl.part").exists()
    records = [json.loads(line) for line in open(settings.out)]  # in the order the instances were judged
    assert sorted((r["problem"], r["difficulty"], r["generation"]["sample"]) for r in records) == [
        ("fizzbuzz", 1, 0), ("fizzbuzz", 1, 2), ("fizzbuzz", 2, 0), ("fizzbuzz", 2, 2)]
    sent = {(r["body"]["messages"][0]["content"], r["body"]["seed"]): r["body"] for r in fake.log[2:]}
    for record in records:
        meta = record["generation"]
        body = sent[(record["prompt"], meta["seed"])]
        assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.8, 0.95, 1024)
        assert record["teacher"] == "openai:fake-teacher" and "sample" in record["provenance"]
        assert meta["endpoint"] == fake.url and meta["model"] == "fake-teacher-2026"
        assert (meta["temperature"], meta["top_p"], meta["samples"], meta["cost"]) == (0.8, 0.95, 3, 0.001)
        assert meta["tokens"] == {"prompt": len(record["prompt"].split()),
                                  "completion": len(record["response"].split())}
        assert datetime.fromisoformat(meta["time"]).tzinfo is not None and meta["finish_reason"] == "stop"
        assert record["id"].endswith(f"-k{meta['sample']}") and record["seed"] == TRAIN_SEED
    assert KEY not in open(settings.out).read() and all(r["auth"] == f"Bearer {KEY}" for r in fake.log)


def test_traces_in_several_wordings_are_judged_as_each_wording_asks_and_train_in_it(tmp_path, endpoint):
    """Each instance asked in three wordings; the answer is right for the wording asked (another function name
    for stub, a stdin/stdout program for stdio). A stub answer that keeps the contract's function name fails."""
    from algodistill.traces import sft_rows

    def answer(instance, sample):
        if sample == 1 and instance.style == "stub":  # the contract's name where the stub asks for another
            return fenced(make_instance(instance.problem, instance.difficulty, instance.seed, instance.index).reference)
        return fenced(instance.reference)

    settings = endpoint_settings(tmp_path, problems=["fizzbuzz"], difficulties=[1], samples=2,
                                 prompt_styles=["contract", "stub", "stdio"])
    endpoint(settings, answer)
    report = generate_traces(settings, log=lambda m: None)
    assert report["status"] == "completed" and (report["instances"], report["drawn"]) == (3, 6)
    assert {k: (c["drawn"], c["passed"]) for k, c in report["prompt_styles"].items()} == \
        {"contract": (2, 2), "stub": (2, 1), "stdio": (2, 2)}
    records = [json.loads(line) for line in open(settings.out)]
    assert sorted(r.get("style", "contract") for r in records) == ["contract", "stdio", "stub"]  # duplicates dropped
    assert all(("-" + r["style"] + "-k") in r["id"] for r in records if "style" in r)
    checks = verify_file(settings.out)
    assert all(c.kept and not c.warnings for c in checks) and len(checks) == 3
    prompts = {c.record.get("style", "contract"): row["prompt"][0]["content"]
               for c, row in zip(checks, sft_rows(checks))}
    assert "standard input" in prompts["stdio"] and prompts["stub"] != prompts["contract"]


def test_a_trace_in_a_style_is_judged_in_that_style(tmp_path):
    from algodistill.problems.styles import styled
    instance = make_instance("rpn", 3, TRAIN_SEED, 0)
    stub = styled(instance, "stub")
    lines = [{"problem": "rpn", "difficulty": 3, "seed": TRAIN_SEED, "index": 0, "style": "stub",
              "response": fenced(stub.reference)},
             {"problem": "rpn", "difficulty": 3, "seed": TRAIN_SEED, "index": 0, "style": "stub",
              "response": fenced(instance.reference)},  # the contract's name: not what the stub asks for
             {"problem": "rpn", "difficulty": 3, "seed": TRAIN_SEED, "index": 0, "style": "shouty", "response": "x"}]
    path = tmp_path / "styled.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    good, wrong, bad = verify_file(path)
    assert good.kept and good.to_dict()["style"] == "stub" and good.id.endswith("-stub")
    assert not wrong.kept and "missing_function" in wrong.reason
    assert not bad.kept and "unknown style 'shouty'" in bad.reason


def test_the_cli_prints_the_pass_rate_table_and_the_cells_the_student_cannot_learn(tmp_path, endpoint, capsys):
    settings = endpoint_settings(tmp_path, difficulties=[1], samples=2)
    fake = endpoint(settings)
    argv = ["traces", "generate", "--teacher", settings.teacher, "--base-url", fake.url, "--api-key-env",
            "TEACHER_KEY", "--problems", "fizzbuzz", "reverse_string", "--difficulties", "1", "--samples", "2",
            "--out", settings.out]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "fizzbuzz" in out and "2/2 100%" in out and "0/2 0%" in out
    assert "the student will not learn from these (1 cell(s)): reverse_string d1" in out
    assert main(argv + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["kept"], report["duplicates"]) == (1, 1)
    assert report["no_pass"] == [{"problem": "reverse_string", "difficulty": 1}]
    assert report["tokens"]["prompt"] > 0 and report["cost"] == pytest.approx(0.004)


def test_auth_errors_and_an_unreachable_endpoint_exit_2_with_a_clear_message(tmp_path, endpoint, capsys,
                                                                             monkeypatch):
    settings = endpoint_settings(tmp_path, problems=["fizzbuzz"], difficulties=[1], samples=1, temperature=0.0)
    fake = endpoint(settings)
    argv = ["traces", "generate", "--teacher", settings.teacher, "--api-key-env", "TEACHER_KEY", "--problems",
            "fizzbuzz", "--difficulties", "1", "--samples", "1", "--out", settings.out]
    monkeypatch.setenv("TEACHER_KEY", "sk-wrong")
    assert main(argv + ["--base-url", fake.url]) == 2
    err = capsys.readouterr().err
    assert "refused the API key from $TEACHER_KEY (HTTP 401" in err and "sk-wrong" not in err
    assert not Path(settings.out).exists()  # nothing verified: no file, rather than an empty one
    monkeypatch.delenv("TEACHER_KEY")
    assert main(argv + ["--base-url", fake.url]) == 2
    assert "$TEACHER_KEY is not set" in capsys.readouterr().err
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    began = time.time()
    assert main(argv + ["--base-url", f"http://user:secret@127.0.0.1:{closed}/v1"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the endpoint http://127.0.0.1:{closed}/v1" in err and "secret" not in err
    assert time.time() - began < 30  # at once, not after the retries


def test_the_evaluation_seed_and_evaluation_problems_are_refused(tmp_path, endpoint, monkeypatch, capsys):
    with pytest.raises(ValueError, match="999 is the evaluation seed"):
        endpoint_settings(tmp_path, seed=999).check()
    assert main(["traces", "generate", "--teacher", "openai:m", "--out", str(tmp_path / "x.jsonl"),
                 "--seed", "999"]) == 2
    assert "evaluation seed" in capsys.readouterr().err and not (tmp_path / "x.jsonl").exists()
    settings = endpoint_settings(tmp_path, problems=["fizzbuzz"], samples=1, temperature=0.0)
    leak = make_instance("fizzbuzz", 2, TRAIN_SEED, 0)  # as if it were a problem of the evaluation grid
    monkeypatch.setattr(teacher_module, "eval_fingerprints", lambda: frozenset({leak.fingerprint()}))
    fake = endpoint(settings)
    report = generate_traces(settings, log=lambda m: None)
    assert report["refused"] == [{"problem": "fizzbuzz", "difficulty": 2, "seed": TRAIN_SEED, "index": 0,
                                  "reason": "a problem of the evaluation grid"}]
    assert report["instances"] == 1 and leak.prompt not in {r["body"]["messages"][0]["content"] for r in fake.log}


def test_a_stop_or_a_failure_midway_keeps_what_was_verified(tmp_path, endpoint):
    settings = endpoint_settings(tmp_path, problems=["fizzbuzz"], difficulties=[1, 2, 3, 4], concurrency=1)
    fake = endpoint(settings)
    report = generate_traces(settings, should_stop=lambda: len(fake.log) >= 4, log=lambda m: None)
    assert report["status"] == "stopped" and 3 <= report["drawn"] < 12
    lines = verify_file(settings.out)
    assert lines and all(c.kept for c in lines) and not (tmp_path / "teacher.jsonl.part").exists()
    assert {c.record["difficulty"] for c in lines} <= {1, 2}

    fake = endpoint(settings)
    fake.script = {n: (403, {}) for n in range(3, 100)}  # the key is revoked after the first instance
    report = generate_traces(settings, log=lambda m: None)
    assert report["status"] == "failed" and "HTTP 403" in report["error"]
    assert [(c.record["difficulty"], c.kept) for c in verify_file(settings.out)] == [(1, True), (1, True)]


def test_ctrl_c_ends_the_command_at_once_with_requests_hanging_and_keeps_what_was_verified(tmp_path, endpoint):
    settings = endpoint_settings(tmp_path, problems=["fizzbuzz"], difficulties=[1, 2], concurrency=3)
    fake = endpoint(settings)
    fake.hang_from = 3  # the first instance's three samples are answered, then the endpoint hangs
    out = tmp_path / "teacher.jsonl"
    child = subprocess.Popen([sys.executable, "-m", "algodistill", "traces", "generate", "--teacher", settings.teacher,
                              "--base-url", fake.url, "--api-key-env", "TEACHER_KEY", "--problems", "fizzbuzz",
                              "--difficulties", "1", "2", "--samples", "3", "--concurrency", "3", "--out", str(out)],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        part, end = out.with_name(out.name + ".part"), time.time() + 120
        while not (part.is_file() and part.read_text() and len(fake.log) == 6):  # the second instance's hang
            assert time.time() < end and child.poll() is None, child.communicate()
            time.sleep(0.2)
        child.send_signal(signal.SIGINT)
        interrupted = time.time()
        stdout, stderr = child.communicate(timeout=30)
    finally:
        child.kill()
    assert time.time() - interrupted < 10, "the hanging requests were waited for"
    assert child.returncode == 1 and "stopped" in stdout, stderr
    assert [(c.record["difficulty"], c.kept) for c in verify_file(out)] == [(1, True), (1, True)]
    assert not part.exists()


def test_retry_after_reads_seconds_milliseconds_and_dates():
    assert retry_after({"retry-after": "2"}) == 2.0 and retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({}) is None and retry_after({"retry-after": "soon"}) is None
    assert retry_after({"retry-after": "99999"}) == teacher_module.MAX_RETRY_AFTER_S
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 <= retry_after({"retry-after": later}) <= 30


def test_a_local_teacher_that_fails_everything_says_so_and_writes_an_empty_trace_set(tmp_path, tiny_model_dir,
                                                                                    capsys):
    out = tmp_path / "tiny.jsonl"
    code = main(["traces", "generate", "--teacher", tiny_model_dir, "--problems", "fizzbuzz", "--difficulties", "1",
                 "2", "--samples", "2", "--temperature", "1.0", "--max-new-tokens", "8", "--device", "cpu",
                 "--out", str(out), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["status"] == "completed"  # it ran, but nothing can be learned from it
    assert (report["drawn"], report["passed"], report["kept"]) == (4, 0, 0)
    assert report["no_pass"] == [{"problem": "fizzbuzz", "difficulty": 1}, {"problem": "fizzbuzz", "difficulty": 2}]
    assert report["tokens"]["completion"] > 0 and report["tokens"]["prompt"] > 0 and report["cost"] is None
    assert not out.exists()  # and no empty trace set is written


def test_the_app_job_records_progress_and_its_report_and_leaves_no_empty_set(db, tmp_path, endpoint):
    from algodistill.ui import runs_tab
    store = db
    settings = endpoint_settings(tmp_path, difficulties=[1], samples=2)
    endpoint(settings)
    run_id = teacher_module.create_run(store, settings)
    assert main(["traces", "generate", "--run", str(run_id)]) == 0
    run = store.get_run(run_id)
    assert run["kind"] == "traces" and run["status"] == "completed" and run["progress"] == 1.0
    assert run["summary"]["kept"] == 1 and "1 trace(s) kept in teacher.jsonl" in run["message"]
    assert KEY not in json.dumps(run["settings"]) and len(verify_file(settings.out)) == 1
    row = next(r for r in runs_tab.runs_rows() if r[0] == run_id)  # the Runs tab lists it with its outcome
    assert row[1] == "traces" and row[8] == "1 traces kept" and "out=" not in row[9]
    assert "2/4 samples passed, 1 traces kept" in runs_tab.detail(run_id)

    nothing = endpoint_settings(tmp_path, problems=["reverse_string"], difficulties=[1], samples=1, temperature=0.0,
                                out=str(tmp_path / "nothing.jsonl"))
    endpoint(nothing)
    run_id = teacher_module.create_run(store, nothing)
    assert main(["traces", "generate", "--run", str(run_id)]) == 1
    run = store.get_run(run_id)
    assert run["status"] == "completed" and "no trace kept" in run["message"]
    assert not (tmp_path / "nothing.jsonl").exists() and run["summary"]["out"] is None


def test_samples_that_all_come_back_alike_are_called_out_as_an_endpoint_ignoring_the_temperature(tmp_path, endpoint):
    from algodistill.teacher import sampling_line
    settings = endpoint_settings(tmp_path, problems=["reverse_string"], samples=2)
    endpoint(settings, lambda instance, sample: fenced(instance.reference))  # one text whatever the seed
    report = generate_traces(settings, log=lambda m: None)
    assert report["same_text"] == {"instances": 2, "of": 2}
    assert "ignore the temperature" in sampling_line(report) and "do_sample" in sampling_line(report)
    varied = endpoint_settings(tmp_path, problems=["fizzbuzz"], samples=2, out=str(tmp_path / "varied.jsonl"))
    endpoint(varied)  # answers() differs by sample
    report = generate_traces(varied, log=lambda m: None)
    assert report["same_text"] == {"instances": 0, "of": 2} and sampling_line(report) is None
    assert sampling_line({**report, "temperature": 0.0, "same_text": {"instances": 2, "of": 2}}) is None


def test_a_generation_that_keeps_nothing_leaves_an_earlier_file_of_that_name_as_it_was(tmp_path, endpoint, capsys):
    settings = endpoint_settings(tmp_path, problems=["reverse_string"], samples=1, temperature=0.0)
    endpoint(settings)  # answers() returns None for reverse_string: nothing passes
    out = tmp_path / "teacher.jsonl"
    out.write_text("my earlier traces\n")
    flags = ["traces", "generate", "--teacher", settings.teacher, "--base-url", settings.base_url, "--api-key-env",
             "TEACHER_KEY", "--problems", "reverse_string", "--difficulties", "1", "2", "--samples", "1",
             "--temperature", "0", "--out", str(out)]
    assert main(flags) == 1
    assert out.read_text() == "my earlier traces\n" and not (tmp_path / "teacher.jsonl.part").exists()
    assert "was not written (the file already there is unchanged)" in capsys.readouterr().out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif("smollm2-135m" not in offline_models(), reason="the offline SmolLM2 is not installed")
def test_transformers_serve_is_a_teacher_our_client_reads(tmp_path, capsys):
    """The installed transformers' own OpenAI-compatible server (`transformers serve DIR`) on loopback, serving the
    offline SmolLM2: traces generate reads its answers, usage and finish reasons, and, since the converted model's
    generation config does not sample, says that the K samples came back alike."""
    import shutil
    import urllib.request
    from algodistill.models import materialize
    model = materialize("smollm2-135m", log=lambda m: None).path
    port = free_port()
    server = subprocess.Popen([shutil.which("transformers") or str(Path(sys.executable).parent / "transformers"),
                               "serve", str(model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        end = time.time() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if json.load(reply).get("status") == "ok":
                        break
            except OSError:
                assert server.poll() is None and time.time() < end, server.stderr.read().decode()[-2000:]
                time.sleep(1)
        out = tmp_path / "served.jsonl"
        code = main(["traces", "generate", "--teacher", f"openai:{model}", "--base-url", f"http://127.0.0.1:{port}/v1",
                     "--problems", "reverse_string", "fizzbuzz", "--difficulties", "1", "--samples", "2",
                     "--temperature", "0.7", "--max-new-tokens", "160", "--concurrency", "1", "--out", str(out),
                     "--json"])
        report = json.loads(capsys.readouterr().out)
        assert report["status"] == "completed" and report["drawn"] == report["judged"] == 4, report
        assert report["tokens"]["prompt"] > 0 and report["tokens"]["completion"] > 0  # the server's usage
        assert report["same_text"] == {"instances": 2, "of": 2}  # greedy whatever the temperature: said so
        assert code in (0, 1) and (out.exists() == (report["kept"] > 0))
        for check in verify_file(out) if out.exists() else []:
            assert check.kept and check.record["generation"]["finish_reason"] in ("stop", "length")
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.skipif("qwen2.5-coder-0.5b" not in offline_models(), reason="the offline Qwen is not installed")
def test_the_offline_qwen_teaches_a_few_instances_and_its_file_verifies(tmp_path):
    out = tmp_path / "qwen.jsonl"
    settings = TeacherSettings(teacher="qwen2.5-coder-0.5b", out=str(out), problems=["fizzbuzz", "reverse_string"],
                               difficulties=[1], samples=2, temperature=0.7, max_new_tokens=512, device="cpu")
    report = generate_traces(settings, log=lambda m: None)
    assert report["status"] == "completed" and report["drawn"] == 4 and report["kept"] >= 1
    checks = verify_file(out)
    assert len(checks) == report["kept"] and all(c.kept and not c.warnings for c in checks)
    prompts = {inst.prompt for inst in grid(["fizzbuzz", "reverse_string"], [1], TRAIN_SEED)}
    assert {c.record["prompt"] for c in checks} <= prompts
    assert all(c.record["generation"]["tokens"]["completion"] > 0 for c in checks)


def data_tab_form(settings, source="OpenAI-compatible endpoint", model=""):
    """The Data tab's form values for ``settings``, in the order of its inputs."""
    return [source, model, settings.endpoint_model, settings.base_url, settings.api_key_env, settings.problems,
            settings.difficulties, settings.per_cell, settings.samples, settings.temperature, settings.top_p,
            settings.max_new_tokens, settings.concurrency, settings.prompt_styles]


def test_the_data_tab_form_asks_in_the_chosen_wordings(tmp_path, monkeypatch, endpoint):
    from algodistill.ui import common, teacher_view
    monkeypatch.setattr(common, "uploads_dir", lambda: tmp_path / "uploads")
    monkeypatch.setattr(teacher_view, "uploads_dir", lambda: tmp_path / "uploads")
    settings = endpoint_settings(tmp_path, prompt_styles=["terse", "stdio"])
    endpoint(settings)
    assert teacher_view.settings_from_form(*data_tab_form(settings)).prompt_styles == ["terse", "stdio"]
    assert teacher_view.settings_from_form(*data_tab_form(settings)[:-1]).prompt_styles == ["contract"]
    with pytest.raises(ValueError, match="at least one prompt style"):
        teacher_view.settings_from_form(*data_tab_form(settings)[:-1], [])


def test_the_data_tab_runs_a_generation_as_a_job_that_stops_within_seconds_keeping_what_was_verified(
        db, tmp_path, endpoint):
    from algodistill import jobs
    from algodistill.ui import common, teacher_view
    settings = endpoint_settings(tmp_path, problems=["fizzbuzz"], difficulties=list(range(1, 11)), concurrency=1)
    fake = endpoint(settings)
    fake.delay = 0.3
    text, run_id = teacher_view.start(*data_tab_form(settings))
    assert text == f"Started trace generation #{run_id}." and db.get_run(run_id)["kind"] == "traces"
    assert db.get_run(run_id)["pid"] not in (None, os.getpid())  # its own process

    def judged() -> int:
        found = re.search(r"(\d+) judged", db.get_run(run_id).get("message") or "")
        return int(found.group(1)) if found else 0

    end = time.time() + 120
    while judged() < 3:  # the first instance is in the file
        assert time.time() < end and db.get_run(run_id)["status"] in ("queued", "running"), jobs.log_tail(db, run_id)
        time.sleep(0.3)
    assert "keeps the traces verified so far" in teacher_view.stop(run_id)
    stopped_at = time.time()
    while db.get_run(run_id)["status"] in ("queued", "running"):
        assert time.time() - stopped_at < 30, jobs.log_tail(db, run_id)
        time.sleep(0.2)
    run = db.get_run(run_id)
    assert run["status"] == "stopped" and "verified until then are kept" in run["error"], jobs.log_tail(db, run_id)
    out = run["settings"]["out"]
    assert out.startswith(str(common.uploads_dir())) and out in [path for _, path in common.trace_sets()]
    checks = verify_file(out)
    assert checks and all(c.kept for c in checks) and len(checks) == run["summary"]["kept"] < 20
    status, outcome, table = teacher_view.show(run_id)
    assert "stopped" in status and f"`{out.rsplit('/', 1)[-1]}`" in outcome
    assert table["headers"][:2] == ["problem", "d1"] and table["data"][0][:2] == ["fizzbuzz", "3/3 100%"]


class _Request:
    def __init__(self, username=None):
        self.session, self.username = {}, username


def test_hosted_only_the_owner_generates_and_never_through_an_endpoint(db, tmp_path, monkeypatch):
    from gradio.context import LocalContext

    from algodistill.ui import access, teacher_view
    settings = endpoint_settings(tmp_path, base_url="http://127.0.0.1:9/v1")
    monkeypatch.setenv("ALGODISTILL_AUTH", "owner:pw")
    assert teacher_view._key_note("PATH") == "$PATH is set in the app's environment."
    access.configure(True)
    try:
        assert teacher_view._key_note("PATH") == ""  # which variables the server has is not for callers to learn
        with pytest.raises(access.Refused, match="not generate traces"):
            teacher_view.start(*data_tab_form(settings))
        with pytest.raises(access.Refused):
            teacher_view.stop(None)
        token = LocalContext.request.set(_Request(username="owner"))
        try:
            text, run_id = teacher_view.start(*data_tab_form(settings))
            assert run_id is None and "not offered on a hosted app" in text
            text, run_id = teacher_view.start(*data_tab_form(settings, "local model", "/root/some-model"))
            assert run_id is None and "only these models" in text
        finally:
            LocalContext.request.reset(token)
    finally:
        access.configure(False)
    assert db.runs(kind="traces") == []


def test_a_trace_generation_is_not_exported_in_a_bundle(store, tmp_path):
    from algodistill.bundle import BundleError, export_bundle
    run_id = teacher_module.create_run(store, endpoint_settings(tmp_path))
    store.finish_run(run_id, "completed")
    with pytest.raises(BundleError, match="is a traces run: a bundle holds trainings and evaluations"):
        export_bundle(store, [run_id], tmp_path / "b.zip")
