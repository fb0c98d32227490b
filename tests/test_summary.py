"""Several samples per instance: completion lines numbered per instance, and pass@k in the summary."""

import json
import math

import pytest

from algodistill.evaluate import load_completions, pass_at_k, summarize


def rows(outcomes: dict[str, list[bool]]) -> list[dict]:
    return [{"problem": p, "difficulty": 1, "seed": 999, "idx": 0, "sample": n, "passed": 5 * ok, "total": 5,
             "status": "passed" if ok else "wrong_answer"} for p, oks in outcomes.items() for n, ok in enumerate(oks)]


def test_one_sample_per_instance_has_no_pass_at_k():
    assert "pass_at_k" not in summarize(rows({"rpn": [True], "fizzbuzz": [False]}))


def test_three_samples_one_right_is_pass_at_1_of_a_third():
    summary = summarize(rows({"rpn": [False, True, False]}))
    assert summary["n"] == 3 and summary["solved"] == 1  # accuracy still counts sample rows
    k = summary["pass_at_k"]
    assert k["instances"] == 1 and k["samples_per_instance"] == {"min": 3, "max": 3}
    assert k["pass@1"] == pytest.approx(1 / 3) and "pass@5" not in k  # 3 samples cannot estimate pass@5


def test_unbiased_pass_at_k_matches_chen_et_al():
    # n=10, c=2: pass@5 = 1 - C(8,5)/C(10,5); an instance with n-c < k is certainly solved in k draws
    k = pass_at_k([(10, 2), (10, 6)])
    assert k["pass@5"] == pytest.approx((1 - math.comb(8, 5) / math.comb(10, 5) + 1.0) / 2)
    assert k["pass@10"] == pytest.approx(1.0) and k["pass@1"] == pytest.approx(0.4)
    assert "pass@5" not in pass_at_k([(10, 2), (4, 1)])  # every instance needs >= k samples


def test_lines_without_a_sample_number_fill_the_free_numbers_in_file_order(tmp_path):
    line = {"problem": "rpn", "difficulty": 1, "completion": "x"}
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in
                            (line, dict(line, sample=1), line, dict(line, index=1), dict(line, sample="2"))))
    items, extras, skipped = load_completions(path)
    assert [(i.index, e["sample"]) for (i, _), e in zip(items, extras)] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert [s["line"] for s in skipped] == [5] and "'sample' must be" in skipped[0]["reason"]
