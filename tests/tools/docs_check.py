#!/usr/bin/env python3
"""docs_check.py - keeps README.md and docs/ true to the tree.

  docs_check.py links REPO
      Every relative link in README.md and docs/*.md ([text](path) and
      [text](path#anchor)) must name a file or directory that exists, and
      an anchor must name a heading of the target page.

  docs_check.py copies REPO
      Every code block whose fence names a file, as README.md's copy of
      the quick-start program does,

          ```c file=examples/quickstart.c

      must hold that file's text exactly (the path is relative to REPO).

  docs_check.py check REPO
      Both of the above.  Run by the unit suite (test 'docs').

  docs_check.py run REPO WORKDIR
      Runs, in order and from WORKDIR (a copy of the tree), every shell
      block of README.md and docs/*.md whose fence is tagged runnable:

          ```sh runnable
          meson setup build && meson compile -C build demo
          ```

      Each block runs under `sh -e`; a block that fails stops the check.
      Pages run in the order README.md, then docs/ by name, so that a
      page can rely on the build the quick start made.

      A block that shows a program's output is checked the same way, in
      its place among the runnable ones, when its fence is tagged output
      and its first line is the command after "$ ":

          ```text output
          $ build/examples/quickstart
          NLL 2.013 nats per sample (success)
          ```

      The command must print exactly the rest of the block.  Run by CI.
"""
import os
import re
import subprocess
import sys

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```(.*)$")


def pages(repo):
    found = [os.path.join(repo, "README.md")]
    docs = os.path.join(repo, "docs")
    if os.path.isdir(docs):
        for name in sorted(os.listdir(docs)):
            if name.endswith(".md"):
                found.append(os.path.join(docs, name))
    return found


def prose_lines(path):
    """The page's lines outside fenced code blocks, with their numbers."""
    inside = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if FENCE.match(line.strip()):
                inside = not inside
                continue
            if not inside:
                yield number, line


def anchors(path):
    """GitHub's anchors for the page's headings."""
    names = set()
    for _, line in prose_lines(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        # Backquotes and asterisks are markup; underscores stay (GitHub keeps
        # them: "INVDL_ESINGULAR" gives "invdl_esingular").
        text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", m.group(1)).lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        base, k = slug, 1
        while slug in names:
            slug = "%s-%d" % (base, k)
            k += 1
        names.add(slug)
    return names


def check_links(repo):
    bad = []
    count = 0
    for page in pages(repo):
        for number, line in prose_lines(page):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue  # http:, https:, mailto:: not checked here
                count += 1
                path, _, anchor = target.partition("#")
                where = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
                rel = os.path.relpath(page, repo)
                if not os.path.exists(where):
                    bad.append("%s:%d: %s: no such file" % (rel, number, target))
                elif anchor and where.endswith(".md") and anchor not in anchors(where):
                    bad.append("%s:%d: %s: no such heading" % (rel, number, target))
    for line in bad:
        print(line)
    print("%d relative links checked in %d pages, %d broken" % (count, len(pages(repo)), len(bad)))
    return 1 if bad else 0


def blocks(page):
    """(first line number, the fence's words, text) of each fenced block."""
    block = None
    with open(page, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            m = FENCE.match(line.rstrip("\n"))
            if m and block is None:
                block, words, start = [], m.group(1).split(), number
            elif m:
                yield start, words, "".join(block)
                block = None
            elif block is not None:
                block.append(line)


def check_copies(repo):
    bad = []
    count = 0
    for page in pages(repo):
        rel = os.path.relpath(page, repo)
        for start, words, text in blocks(page):
            for word in words[1:]:
                if not word.startswith("file="):
                    continue
                count += 1
                source = os.path.join(repo, word[len("file="):])
                if not os.path.isfile(source):
                    bad.append("%s:%d: %s: no such file" % (rel, start, word))
                    continue
                with open(source, encoding="utf-8") as f:
                    if f.read() != text:
                        bad.append("%s:%d: the block differs from %s" % (rel, start, word[5:]))
    for line in bad:
        print(line)
    print("%d copies of files checked, %d differ" % (count, len(bad)))
    return 1 if bad else 0


def check_output(where, text, workdir):
    """Runs the command of an output block; 0 if it prints the rest."""
    first, _, shown = text.partition("\n")
    if not first.startswith("$ "):
        print("%s: an output block must start with \"$ command\"" % where)
        return 1
    print(first)
    done = subprocess.run(["sh", "-e", "-c", first[2:]], cwd=workdir,
                          stdout=subprocess.PIPE, universal_newlines=True)
    if done.returncode != 0 or done.stdout != shown:
        print(done.stdout, end="")
        print("%s: the command's output (exit %d) differs from the block" % (where, done.returncode))
        return 1
    return 0


def run_blocks(repo, workdir):
    total = 0
    for page in pages(repo):
        rel = os.path.relpath(page, repo)
        for start, words, text in blocks(page):
            where = "%s:%d" % (rel, start)
            if words[:1] != ["sh"] and "output" in words[1:]:
                total += 1
                print("==== %s (output)" % where)
                if check_output(where, text, workdir):
                    return 1
            if words[:1] != ["sh"] or "runnable" not in words:
                continue
            total += 1
            print("==== %s" % where)
            print(text, end="", flush=True)
            done = subprocess.run(["sh", "-e", "-c", text], cwd=workdir)
            if done.returncode != 0:
                print("%s: the block failed (exit %d)" % (where, done.returncode))
                return 1
    print("%d runnable and output blocks ran" % total)
    return 0 if total > 0 else 1


def main(argv):
    if len(argv) == 3 and argv[1] == "links":
        return check_links(argv[2])
    if len(argv) == 3 and argv[1] == "copies":
        return check_copies(argv[2])
    if len(argv) == 3 and argv[1] == "check":
        return check_links(argv[2]) | check_copies(argv[2])
    if len(argv) == 4 and argv[1] == "run":
        return run_blocks(argv[2], argv[3])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
