"""Several samples per instance: completion lines numbered per instance, and pass@k in the summary."""

import json
import math

import pytest

from algodistill.evaluate import load_completions, pass_at_k, summarize, wilson


def rows(outcomes: dict[str, list[bool]]) -> list[dict]:
    return [{"problem": p, "difficulty": 1, "seed": 999, "idx": 0, "sample": n, "passed": 5 * ok, "total": 5,
             "status": "passed" if ok else "wrong_answer"} for p, oks in outcomes.items() for n, ok in enumerate(oks)]


def test_one_sample_per_instance_pass_at_1_is_the_accuracy_with_its_interval():
    summary = summarize(rows({"rpn": [True], "fizzbuzz": [False], "two_sum": [True]}))
    k = summary["pass_at_k"]
    assert [m for m in k if m.startswith("pass@")] == ["pass@1"]
    assert k["pass@1"] == pytest.approx(summary["accuracy"]) == pytest.approx(2 / 3)
    assert k["ci"]["pass@1"] == pytest.approx(summary["accuracy_ci"])
    assert k["per_problem"]["fizzbuzz"]["pass@1"] == 0.0 and k["per_problem"]["rpn"]["pass@1"] == 1.0


def test_three_samples_one_right_is_pass_at_1_of_a_third():
    summary = summarize(rows({"rpn": [False, True, False]}))
    assert summary["n"] == 3 and summary["solved"] == 1  # accuracy still counts sample rows
    k = summary["pass_at_k"]
    assert k["instances"] == 1 and k["samples_per_instance"] == {"min": 3, "max": 3}
    assert k["pass@1"] == pytest.approx(1 / 3) and "pass@5" not in k  # 3 samples cannot estimate pass@5
    assert k["pass@3"] == pytest.approx(1.0)  # K itself: one of the 3 is right, so 3 draws always find it


def test_pass_at_k_per_type_with_intervals_on_a_hand_made_set():
    # rpn: instance 0 has 1 of 3 right, instance 1 none; fizzbuzz: both instances 3 of 3
    samples = rows({"rpn": [False, True, False], "fizzbuzz": [True, True, True]})
    samples += [dict(s, idx=1, status="wrong_answer", passed=0) for s in rows({"rpn": [False] * 3})]
    samples += [dict(s, idx=1) for s in rows({"fizzbuzz": [True] * 3})]
    k = summarize(samples)["pass_at_k"]
    assert k["instances"] == 4 and [m for m in k if m.startswith("pass@")] == ["pass@1", "pass@3"]
    assert k["pass@1"] == pytest.approx((1 / 3 + 0 + 1 + 1) / 4) and k["pass@3"] == pytest.approx(3 / 4)
    rpn, fizz = k["per_problem"]["rpn"], k["per_problem"]["fizzbuzz"]
    assert rpn["pass@1"] == pytest.approx(1 / 6) and rpn["pass@3"] == pytest.approx(1 / 2)
    assert fizz["pass@1"] == fizz["pass@3"] == 1.0
    # Wilson over instances, the summed estimates as successes
    assert k["ci"]["pass@3"] == pytest.approx(list(wilson(3, 4)))
    assert rpn["ci"]["pass@1"] == pytest.approx(list(wilson(1 / 3, 2)))
    for group in (k, rpn, fizz):
        for m, (low, high) in group["ci"].items():
            assert 0 <= low <= group[m] <= high <= 1 and high - low > 0.2  # 2-4 instances: wide, never a point


def test_unbiased_pass_at_k_matches_chen_et_al():
    # n=10, c=2: pass@5 = 1 - C(8,5)/C(10,5); an instance with n-c < k is certainly solved in k draws
    k = pass_at_k([(10, 2), (10, 6)])
    assert k["pass@5"] == pytest.approx((1 - math.comb(8, 5) / math.comb(10, 5) + 1.0) / 2)
    assert k["pass@10"] == pytest.approx(1.0) and k["pass@1"] == pytest.approx(0.4)
    assert "pass@5" not in pass_at_k([(10, 2), (4, 1)])  # every instance needs >= k samples
    assert set(pass_at_k([(10, 2), (4, 1)])["ci"]) == {"pass@1", "pass@4"}  # K = the fewest samples


def test_lines_without_a_sample_number_fill_the_free_numbers_in_file_order(tmp_path):
    line = {"problem": "rpn", "difficulty": 1, "completion": "x"}
    path = tmp_path / "c.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in
                            (line, dict(line, sample=1), line, dict(line, index=1), dict(line, sample="2"))))
    items, extras, skipped = load_completions(path)
    assert [(i.index, e["sample"]) for (i, _), e in zip(items, extras)] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert [s["line"] for s in skipped] == [5] and "'sample' must be" in skipped[0]["reason"]
