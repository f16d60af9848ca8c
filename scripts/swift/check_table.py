"""Keeps the Kotlin/Swift table of docs/API.md in step with the code.

Every public member of the Kotlin SDK layer (android/fieldcast/src/sdk) must appear in the
table's Kotlin column and every public declaration of the Swift shell in its Swift column, as a
code span that starts with `Owner.member` (or `Owner` for a type, `Owner(` for a Swift
initializer). A code span there that names an owner of that layer with a member it lacks fails
too (a stale row).

Members of --kotlin-platform (the Android layer) may be named in the table too, but need not be.

Usage: check_table.py --doc docs/API.md --kotlin DIR [--kotlin-platform DIR] --swift DIR [--self-test]
"""
import argparse
import os
import re
import sys
import tempfile

import swiftsyntax
from swiftsyntax import text

KOTLIN_TYPE = re.compile(r"^(?:(public|internal|private)\s+)?(?:data\s+|enum\s+|abstract\s+|open\s+)*(class|object|interface)\s+(\w+)(\((.*)\))?")
KOTLIN_MEMBER = re.compile(r"^    (?:@\w+(?:\([^)]*\))?\s+)*(?:(public|internal|private|protected)\s+)?(?:override\s+)?(?:suspend\s+)?(?:fun|val|var)\s+(?:<[^>]+>\s+)?(\w+)")
KOTLIN_EXTENSION = re.compile(r"^(?:public\s+)?fun\s+(\w+)\.(\w+)")


def kotlin_members(directory):
    """Owner.member (and Owner) of every public declaration of the Kotlin files."""
    found = set()
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".kt"):
            continue
        owner = None
        for line in open(os.path.join(directory, name)):
            if (m := KOTLIN_TYPE.match(line)):
                owner = m.group(3) if m.group(1) in (None, "public") else None
                if owner:
                    found.add(owner)
                    for param in re.findall(r"\bva[lr]\s+(\w+)", m.group(5) or ""):
                        found.add(f"{owner}.{param}")
            elif (m := KOTLIN_EXTENSION.match(line)):
                found.add(f"{m.group(1)}.{m.group(2)}")
            elif owner and (m := KOTLIN_MEMBER.match(line)) and m.group(1) in (None, "public"):
                found.add(f"{owner}.{m.group(2)}")
    return found


def swift_members(directory):
    """Owner.member, Owner( and Owner of every public declaration of the Swift shell."""
    found = set()
    for root, _, names in sorted(os.walk(directory)):
        for name in sorted(names):
            path = os.path.join(root, name)
            if name.endswith(".swift") and "Generated" not in path:
                tree, src = swiftsyntax.parse(path)
                collect(tree.root_node, src, None, found)
    return found


def collect(node, src, owner, found):
    for child in node.named_children:
        public = any(w in ("public", "open") for w in modifier_words(child, src))
        if child.type in ("class_declaration", "protocol_declaration"):
            name = text(child.child_by_field_name("name"), src).split("<")[0]
            if public:
                found.add(name)
            body = child.child_by_field_name("body")
            if body is not None:
                collect(body, src, name, found)
        elif public and owner and child.type == "init_declaration":
            found.add(f"{owner}(")
        elif public and owner and child.type in ("function_declaration", "property_declaration"):
            found.add(f"{owner}.{text(child.child_by_field_name('name'), src).strip('`')}")


def modifier_words(node, src):
    modifiers = next((c for c in node.named_children if c.type == "modifiers"), None)
    return text(modifiers, src).split() if modifiers is not None else []


def table_spans(doc):
    """The code spans of the table's Kotlin and Swift columns."""
    kotlin, swift = [], []
    columns = None
    for line in open(doc):
        if not line.startswith("|"):
            columns = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if columns is None:
            columns = {c.lower(): i for i, c in enumerate(cells)}
            continue
        for column, spans in (("kotlin", kotlin), ("swift", swift)):
            if column in columns and columns[column] < len(cells):
                spans.extend(re.findall(r"`([^`]+)`", cells[columns[column]]))
    return kotlin, swift


def covered(member, spans):
    pattern = re.escape(member) + ("" if member.endswith("(") else r"(?![\w])")
    return any(re.match(pattern, span) for span in spans)


def stale(spans, members):
    """Spans naming Owner.member for an owner of this layer that has no such member."""
    owners = {m.split(".")[0] for m in members if "." in m}
    problems = []
    for span in spans:
        m = re.match(r"(\w+)\.(\w+)", span)
        if m and m.group(1) in owners and f"{m.group(1)}.{m.group(2)}" not in members:
            problems.append(span)
    return problems


def problems(doc, kotlin, platform, swift):
    kotlin_spans, swift_spans = table_spans(doc)
    found = [f"Kotlin `{m}` is not in the table" for m in sorted(kotlin) if not covered(m, kotlin_spans)]
    found += [f"Swift `{m}` is not in the table" for m in sorted(swift) if not covered(m, swift_spans)]
    found += [f"the table names Kotlin `{s}`, which the SDK layer does not have" for s in stale(kotlin_spans, kotlin | platform)]
    found += [f"the table names Swift `{s}`, which the shell does not have" for s in stale(swift_spans, swift)]
    return found, len(kotlin_spans), len(swift_spans)


def self_test(doc, kotlin, platform, swift):
    """A table without the unpin row, and one naming a Swift member that does not exist, must fail."""
    source = open(doc).read()
    row = next(line for line in source.splitlines() if "`Streamer.unpin(" in line)
    mutations = [
        ("a missing row", source.replace(row + "\n", ""), "`Streamer.unpin` is not in the table"),
        ("a stale entry", source.replace("`Streamer.unpin(_:)`", "`Streamer.unpin(_:)`, `Streamer.unpinAll()`"), "`Streamer.unpinAll()`"),
    ]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for title, mutated, expect in mutations:
            copy = os.path.join(tmp, "API.md")
            open(copy, "w").write(mutated)
            found, _, _ = problems(copy, kotlin, platform, swift)
            caught = any(expect in p for p in found)
            print(f"  self-test {title}: {'caught' if caught else 'NOT CAUGHT'}")
            failures += not caught
    return failures


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--doc", required=True)
    args.add_argument("--kotlin", required=True)
    args.add_argument("--kotlin-platform")
    args.add_argument("--swift", required=True)
    args.add_argument("--self-test", action="store_true")
    opts = args.parse_args()
    kotlin, swift = kotlin_members(opts.kotlin), swift_members(opts.swift)
    platform = kotlin_members(opts.kotlin_platform) if opts.kotlin_platform else set()
    if opts.self_test:
        return 1 if self_test(opts.doc, kotlin, platform, swift) else 0
    found, kotlin_entries, swift_entries = problems(opts.doc, kotlin, platform, swift)
    print(f"  {len(kotlin)} public Kotlin SDK members, {len(swift)} public Swift shell members; "
          f"{kotlin_entries} Kotlin and {swift_entries} Swift table entries")
    for problem in found:
        print(f"    {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
