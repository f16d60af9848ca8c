"""Parses Swift files with tree-sitter-swift; fails on any ERROR or MISSING node.

Usage: check_syntax.py --generated FieldCastFFI.swift FILE...
Only in the --generated file are the known misparses of swiftsyntax.known_misparse allowed; each
one is listed with its line and reason. Prints one line per file, exits 1 on any error."""
import argparse
import sys

import swiftsyntax


def check(path, generated):
    tree, src = swiftsyntax.parse(path)
    errors, allowed = [], []
    for node in swiftsyntax.error_nodes(tree):
        reason = swiftsyntax.known_misparse(node, src) if generated else None
        line = node.start_point[0] + 1
        (allowed if reason else errors).append((line, reason or f"{node.type}: {swiftsyntax.text(node, src)[:60]!r}"))
    return errors, allowed


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--generated", required=True)
    args.add_argument("files", nargs="+")
    opts = args.parse_args()
    failed = 0
    for path in [opts.generated] + opts.files:
        errors, allowed = check(path, path == opts.generated)
        status = "ok" if not errors else f"{len(errors)} error node(s)"
        print(f"  {path}: {status}" + (f", {len(allowed)} allowed misparse(s)" if allowed else ""))
        for line, reason in errors:
            print(f"    line {line}: {reason}")
        by_reason = {}
        for line, reason in allowed:
            by_reason.setdefault(reason, []).append(line)
        for reason, lines in by_reason.items():
            print(f"    allowed x{len(lines)}: {reason}; lines {', '.join(map(str, lines))}")
        failed += bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
