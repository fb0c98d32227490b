"""README.md and docs/: every relative link and image resolves to a file, every #anchor to a heading of its
target (GitHub's slugs), and the README stays a short front door. Standard library only."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250

FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text):
    """The lines outside fenced code blocks (lines inside one come back empty, so line numbers keep)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            out.append("")
        elif fence is not None:
            if m and m.group(1).startswith(fence) and line.strip() == m.group(1):
                fence = None
            out.append("")
        else:
            out.append(line)
    return out


def slug(heading):
    """GitHub's anchor of a heading: markup dropped, lowercase, punctuation dropped (hyphens, underscores and
    spaces kept), spaces to hyphens."""
    text = CODE_SPAN.sub(lambda m: m.group(2).strip(), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = re.sub(r"[*]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    """Every anchor a markdown file defines through its headings (duplicates numbered as GitHub does)."""
    seen, out = {}, set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path):
    """(line number, target) of every markdown link and image outside code."""
    text = "\n".join(CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
                     for line in prose_lines(path.read_text(encoding="utf-8")))
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in LINK.finditer(text)]


def broken_links(path):
    """Each relative link of ``path`` that does not resolve, as 'file:line: target (why)'."""
    problems = []
    for line, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else (path.parent / file_part).resolve()
        where = f"{path.name}:{line}: {target}"
        if not dest.exists():
            problems.append(f"{where} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{where} (no heading with anchor #{anchor} in {dest.name})")
    return problems


def doc_files():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_relative_link_resolves():
    files = doc_files()
    assert len(files) > 1, "docs/ has no pages"
    problems = [p for f in files for p in broken_links(f)]
    assert problems == [], "\n".join(problems)


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


def test_readme_keeps_its_front_matter_and_results():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n") and "\nsdk: gradio\n" in text.split("\n---\n", 1)[0]
    assert "\n## Results\n" in text


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for _, t in links(ROOT / "README.md") if t.startswith("docs/")}
    missing = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert missing == [], f"docs pages not in the README's Documentation list: {missing}"


def test_the_checker_finds_broken_links_and_anchors(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "pic.png").write_bytes(b"")
    (tmp_path / "docs" / "page.md").write_text(
        "# A page\n\n## Past one machine: several processes\n\n### vLLM (optional, untested here)\n\n"
        "## `eval` options\n\n## Results\n\n## Results\n")
    good = tmp_path / "good.md"
    good.write_text(
        "# Top\n\n[page](docs/page.md) [vllm](docs/page.md#vllm-optional-untested-here)\n"
        "[p](docs/page.md#past-one-machine-several-processes) [e](docs/page.md#eval-options)\n"
        "[second](docs/page.md#results-1) ![pic](pic.png) [self](#top) [web](https://example.com/x)\n"
        "[mail](mailto:a@b.c) `[not a link](nowhere.md)`\n\n```bash\n[also not](nowhere.md)\n```\n")
    assert broken_links(good) == []

    bad = tmp_path / "bad.md"
    bad.write_text(
        "# Bad\n\n[gone](docs/missing.md)\n![gone](missing.png)\n[anchor](docs/page.md#no-such-heading)\n"
        "[self](#nope) [split over\nlines](#also-nope)\n")
    problems = broken_links(bad)
    assert len(problems) == 5, problems
    assert "bad.md:3: docs/missing.md (no such file)" in problems
    assert any("#no-such-heading" in p and "page.md" in p for p in problems)
    assert any(p.startswith("bad.md:6: #also-nope") for p in problems)


def test_slug_follows_github():
    assert slug("The cure, tried: the varied-wording traces (issue 21)") == \
        "the-cure-tried-the-varied-wording-traces-issue-21"
    assert slug("Storage, bundles and the demo") == "storage-bundles-and-the-demo"
    assert slug("`algodistill/ui/`") == "algodistillui"
    assert slug("The distillation loop on real weights (2-core CPU, small)") == \
        "the-distillation-loop-on-real-weights-2-core-cpu-small"
