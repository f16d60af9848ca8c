"""Swift sources parsed with tree-sitter-swift: the parser, syntax errors, and the constructs of
uniffi's generated Swift that the grammar is known to misparse (allowed there only)."""
import tree_sitter_swift
from tree_sitter import Language, Parser

PARSER = Parser(Language(tree_sitter_swift.language()))


def parse(path):
    """(tree, source bytes) of a Swift file."""
    src = open(path, "rb").read()
    return PARSER.parse(src), src


def text(node, src):
    return src[node.start_byte:node.end_byte].decode()


def error_nodes(tree):
    """Every ERROR and MISSING node, in source order."""
    found = []

    def walk(node):
        if node.type == "ERROR" or node.is_missing:
            found.append(node)
        if node.has_error:
            for child in node.children:
                walk(child)

    walk(tree.root_node)
    return found


def known_misparse(node, src):
    """The reason an error node of generated code is a known grammar limitation, or None.

    1. An attribute alone between `#if swift(>=5.8)` and `#endif` (uniffi puts
       `@_documentation(visibility: private)` there, before the declaration that follows `#endif`):
       the grammar attaches attributes only to a declaration inside the same block.
    2. `{ () }`, a closure that returns the empty tuple (uniffi's `writeReturn` of a callback method
       without a result): the grammar has no expression for a bare `()` as a closure's body.
    """
    body = text(node, src).strip()
    if node.type != "ERROR":
        return None
    before, after = node.prev_sibling, node.next_sibling
    if (body == "@_documentation(visibility: private)" and before is not None and after is not None
            and text(before, src).strip() == "#if swift(>=5.8)" and text(after, src).strip() == "#endif"):
        return "attribute alone inside `#if swift(>=5.8)` ... `#endif` (grammar: attributes need a declaration in the same block)"
    if body == "()" and node.parent is not None and node.parent.type == "lambda_literal" \
            and text(node.parent, src).replace(" ", "") == "{()}":
        return "closure `{ () }` returning the empty tuple (grammar: no bare `()` closure body)"
    return None
