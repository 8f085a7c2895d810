"""The documentation's relative links lead somewhere, and results/README.md indexes every
file in results/.

A link is checked as GitHub renders it: relative to the page, with an ``#anchor`` into a
Markdown file matched against that file's heading slugs and explicit ``<a id=...>``. Links
inside code (fenced blocks, inline spans) are not links, so they are skipped.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
INDEX = RESULTS / "README.md"

FENCED = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1", re.M | re.S)
# an inline code span may wrap onto the next line, never across a blank one
CODE_SPAN = re.compile(r"(`+)(?:(?!\n[ \t]*\n).)+?\1", re.S)
# [text](target) and ![alt](target), a title after the target allowed; one level of
# brackets inside the text
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"
                  r"\(\s*(<[^>]*>|[^()\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.M)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.M)
HTML_ANCHOR = re.compile(r"<a\s[^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.I)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)  # http:, https:, mailto: not ours to check


def pages() -> list[Path]:
    """The pages a reader follows links from: the README, docs/, each experiment's README,
    scripts/README.md, the changelog and the results index."""
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md")),
            *sorted((ROOT / "experiments").glob("*/README.md")), ROOT / "scripts" / "README.md", INDEX]


def without_code(text: str) -> str:
    """The text with fenced blocks and inline code spans blanked out; line breaks are kept
    so that positions still fall on their lines."""
    def blank(match: re.Match) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return CODE_SPAN.sub(blank, FENCED.sub(blank, text))


def link_targets(text: str) -> list[str]:
    """Every link target of a Markdown text, as written (code excluded)."""
    prose = without_code(text)
    return [m.group(1).strip("<>") for m in (*LINK.finditer(prose), *REFERENCE.finditer(prose))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower-cased, punctuation but
    hyphens and underscores dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML renders as nothing
    text = text.replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors a link can name in a Markdown page: each heading's slug (a repeated one
    gets -1, -2, ... as on GitHub) and every explicit <a id=...> or <a name=...>."""
    text = page.read_text(encoding="utf-8")
    prose = FENCED.sub("", text)
    seen: Counter[str] = Counter()
    found = set()
    for heading in HEADING.findall(prose):
        base = slug(heading)
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found | set(HTML_ANCHOR.findall(without_code(text)))


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def broken_links(page: Path) -> list[str]:
    """The relative links of a page that lead to no file, or to no anchor in one."""
    broken = []
    for target in link_targets(page.read_text(encoding="utf-8")):
        if SCHEME.match(target):
            continue
        path, _, fragment = unquote(target).partition("#")
        if path.startswith("/"):  # GitHub resolves it from the repository's root
            resolved = ROOT / path.lstrip("/")
        else:
            resolved = page.parent / path if path else page
        resolved = Path(os.path.normpath(resolved))  # docs/../results/x.md reads as results/x.md
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading or <a id> '{fragment}' in {shown(resolved)}")
    return broken


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_a_file_and_anchor(page):
    assert page.exists(), f"{shown(page)} is missing"
    assert broken_links(page) == [], f"broken links in {shown(page)}"


def test_every_file_in_results_is_indexed():
    """results/README.md links each file, so a table nobody can place cannot pile up."""
    files = {p.relative_to(RESULTS).as_posix() for p in RESULTS.rglob("*") if p.is_file()} - {"README.md"}
    indexed = set()
    for target in link_targets(INDEX.read_text(encoding="utf-8")):
        path = unquote(target).partition("#")[0]
        linked = (INDEX.parent / path).resolve()
        if path and not SCHEME.match(path) and linked.is_relative_to(RESULTS.resolve()):
            indexed.add(linked.relative_to(RESULTS.resolve()).as_posix())
    missing = sorted(files - indexed)
    assert missing == [], "files in results/ that results/README.md does not link: " + ", ".join(missing)


def test_the_link_checker_sees_what_github_renders(tmp_path):
    """Anchors follow GitHub's slugs; code is not a link; a missing file or anchor is found."""
    target = tmp_path / "target.md"
    target.write_text("# Copying at 10,000 updates\n\n## `RIM.compile_step()`: speed\n\n"
                      "## Speed\n\n## Speed\n\n```\n# not a heading\n```\n\n| <a id=\"row\"></a>a row |\n")
    assert anchors(target) == {"copying-at-10000-updates", "rimcompile_step-speed", "speed", "speed-1", "row"}
    page = tmp_path / "page.md"
    page.write_text("[ok](target.md#speed-1) [`code` text](target.md#row) ![img](target.md)\n"
                    "[web](https://example.com/x) [here](#local) `[not](a-link.md)`\n\n"
                    "```\n[nor](this.md)\n```\n\n"
                    "[gone](missing.md) [no anchor](target.md#speed-2)\n\n## Local\n")
    assert broken_links(page) == ["missing.md: no such file",
                                  f"target.md#speed-2: no heading or <a id> 'speed-2' in {shown(target)}"]
