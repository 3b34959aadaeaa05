#!/usr/bin/env python3
"""Checks that every relative link in the project's Markdown resolves to an existing file or folder.

  python3 tools/check_links.py

Reads README.md, docs/*.md, samples/README.md and deploy/README.md (from the repository's top folder, wherever
it is run from). Inline links and images (`[text](target)`, `![alt](target)`) and reference definitions
(`[name]: target`) are checked; links in fenced code blocks and code spans are not links. Anchors (`#...`) and queries
are ignored, http(s), mailto and other scheme links skipped. Prints each broken link as `FILE: LINK` and exits 1
if there is any, else 0.
"""
import glob
import os
import re
import sys
from urllib.parse import unquote

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = ["README.md", "docs/*.md", "samples/README.md", "deploy/README.md"]

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# The "](target "title")" end of [text](target) and ![alt](target): an image inside a link's text is found too.
INLINE = re.compile(r"\]\(\s*(<[^>]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(?:\s+[\"'(][^)]*)?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def links(text):
    """(line number, target) of every link outside code."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            marker = m.group(1)
            if fence is None:
                fence = marker[0] * len(marker)
            elif marker.startswith(fence):
                fence = None
            continue
        if fence is not None:
            continue
        line = CODE_SPAN.sub("", line)
        for m in INLINE.finditer(line):
            yield number, m.group(1)
        m = REFERENCE.match(line)
        if m:
            yield number, m.group(1)


def broken(path):
    """The relative links of `path` whose file does not exist."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for _, target in links(text):
        target = target.strip("<>").strip()
        if not target or target.startswith("#") or SCHEME.match(target) or target.startswith("//"):
            continue
        relative = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if not relative:
            continue
        base = ROOT if relative.startswith("/") else os.path.dirname(path)
        if not os.path.exists(os.path.normpath(os.path.join(base, relative.lstrip("/")))):
            yield target


def main():
    paths = []
    for pattern in FILES:
        paths += sorted(glob.glob(os.path.join(ROOT, pattern)))
    failures = 0
    for path in paths:
        for target in broken(path):
            print(f"{os.path.relpath(path, ROOT)}: {target}")
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
