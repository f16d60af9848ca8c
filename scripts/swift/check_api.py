"""API conformance of Swift code with the generated uniffi bindings (and with the shell).

Builds an index of the declarations of FieldCastFFI.swift (types, enum cases, properties,
functions, methods and initializers with their argument labels and types) and of the shell's
sources, then checks the Swift files given:

- `Type(...)`, `Type.member(...)`, `value.member(...)` and `value.property` where the type of the
  type or value is known: a declared type, the result of a known call or property, `self`, or the
  parameter of a closure passed to a known method (`guarded.use { $0.pushAudio(...) }`);
- `.member` and `.member(...)` given to a parameter of a known enum type, and `.case(...)` of a
  binding enum anywhere;
- every capitalised name used as a type or callee: a binding, shell or local type, or a platform
  name listed in platform_names.txt.

Argument labels must match in order; defaulted parameters may be left out. Values of unknown type
(platform objects, optionals) are not followed.

Usage: check_api.py --bindings FieldCastFFI.swift --shell DIR FILE...   (the files of one target)
       check_api.py --bindings FieldCastFFI.swift --shell DIR --self-test
"""
import argparse
import os
import re
import sys
import tempfile

import swiftsyntax
from swiftsyntax import text

HERE = os.path.dirname(os.path.abspath(__file__))
# Protocols that give a conforming type no member the checked code would call, so that a member
# missing from the declarations is an error even on types that conform to them.
CLOSED_PROTOCOLS = {"Equatable", "Hashable", "Sendable", "@unchecked Sendable", "AnyObject"}


class Param:
    """One declared parameter: its argument label (None for `_`), type text and default."""

    def __init__(self, label, type_text, has_default):
        self.label, self.type, self.has_default = label, type_text, has_default


class Index:
    """Declarations by type name: generics, inits, methods and cases ([(params, result)]), props."""

    def __init__(self):
        self.types = {}
        self.functions = {}

    def type(self, name):
        return self.types.setdefault(name, {"generics": [], "inherits": set(), "inits": [], "methods": {}, "cases": {}, "props": {}})

    def add_file(self, path, public_only):
        tree, src = swiftsyntax.parse(path)
        self._walk(tree.root_node, src, None, public_only)

    def _walk(self, node, src, owner, public_only):
        for child in node.named_children:
            kind = child.type
            if kind in ("class_declaration", "protocol_declaration"):
                self._type_decl(child, src, public_only)
            elif kind in ("function_declaration", "protocol_function_declaration"):
                if not public_only or kind.startswith("protocol") or visible(child, src):
                    name = text(child.child_by_field_name("name"), src).strip("`")
                    table = self.type(owner)["methods"] if owner else self.functions
                    table.setdefault(name, []).append((params(child, src), return_type(child, src)))
            elif kind == "init_declaration" and owner and (not public_only or visible(child, src)):
                self.type(owner)["inits"].append((params(child, src), owner))
            elif kind == "enum_entry" and owner:
                self._cases(child, src, owner)
            elif kind == "property_declaration" and owner and (not public_only or visible(child, src)):
                pattern = child.child_by_field_name("name")
                annotation = next((c for c in child.named_children if c.type == "type_annotation"), None)
                if pattern is not None:
                    self.type(owner)["props"][text(pattern, src)] = \
                        text(annotation, src)[1:].strip() if annotation is not None else None

    def _type_decl(self, node, src, public_only):
        name = node.child_by_field_name("name")
        kind = node.child_by_field_name("declaration_kind")
        is_extension = kind is not None and text(kind, src) == "extension"
        if name is None:
            return
        type_name = text(name, src).split("<")[0].split(".")[-1]
        # Generated code: public declarations, and extensions of those (not of platform types).
        hidden = (private(node, src) or type_name not in self.types) if is_extension else not visible(node, src)
        if public_only and hidden:
            return
        entry = self.type(type_name)
        entry["inherits"] |= {text(c, src).split("<")[0] for c in node.named_children if c.type == "inheritance_specifier"}
        generics = next((c for c in node.named_children if c.type == "type_parameters"), None)
        if generics is not None:
            entry["generics"] = [text(p.named_children[0], src) for p in generics.named_children if p.type == "type_parameter"]
        body = node.child_by_field_name("body")
        if body is not None:
            self._walk(body, src, type_name, public_only)

    def _cases(self, node, src, owner):
        children = node.children
        for i, child in enumerate(children):
            if node.field_name_for_child(i) != "name":
                continue
            data = children[i + 1] if i + 1 < len(children) else None
            case_params = []
            if data is not None and data.type == "enum_type_parameters":
                parts = data.named_children
                for j, part in enumerate(parts):
                    if part.type == "simple_identifier" and j + 1 < len(parts):
                        case_params.append(Param(text(part, src), text(parts[j + 1], src), False))
            self.type(owner)["cases"][text(child, src)] = (case_params, owner)


def modifier_words(node, src):
    modifiers = next((c for c in node.named_children if c.type == "modifiers"), None)
    return text(modifiers, src).split() if modifiers is not None else []


def visible(node, src):
    return any(w in modifier_words(node, src) for w in ("public", "open"))


def private(node, src):
    return any(w in modifier_words(node, src) for w in ("private", "fileprivate"))


def params(node, src):
    """The parameters of a function or init."""
    result = []
    children = node.children
    for i, child in enumerate(children):
        if child.type != "parameter":
            continue
        external = child.child_by_field_name("external_name")
        label = text(external if external is not None else child.child_by_field_name("name"), src)
        type_node = child.named_children[-1]
        has_default = i + 2 < len(children) and children[i + 1].type == "="
        result.append(Param(None if label == "_" else label, text(type_node, src), has_default))
    return result


def return_type(node, src):
    for i, child in enumerate(node.children):
        if child.type == "->":
            return text(node.children[i + 1], src)
    return None


def split_type(type_text):
    """(base name, [generic arguments]) of a plain type such as `Guarded<LiveSession>`, else None."""
    match = re.fullmatch(r"\s*([A-Z]\w*)\s*(?:<\s*([\w\s,?]+)>)?\s*", type_text or "")
    if not match:
        return None
    return match.group(1), [a.strip() for a in (match.group(2) or "").split(",") if a.strip()]


def closure_input(type_text):
    """X of a closure type `(X) -> R` (with attributes and `throws`), else None."""
    match = re.search(r"\(\s*([A-Z][\w<>, ]*?)\s*\)\s*(?:async\s*)?(?:throws\s*)?->", type_text or "")
    return match.group(1) if match else None


def labels_match(labels, declared):
    """True when the call's labels fit the declared parameters in order."""
    i = 0
    for param in declared:
        if i < len(labels) and labels[i] in (param.label, "<closure>"):
            i += 1
        elif not param.has_default:
            return False
    return i == len(labels)


def arguments(call):
    """(label or None or '<closure>', value node) of each argument of a call."""
    suffix = next((c for c in call.named_children if c.type == "call_suffix"), None)
    found = []
    for part in suffix.named_children if suffix is not None else []:
        if part.type == "value_arguments":
            for arg in part.named_children:
                if arg.type == "value_argument":
                    found.append((arg.child_by_field_name("name"), arg.child_by_field_name("value")))
        elif part.type == "lambda_literal":
            found.append(("<closure>", part))
    return found


class Checker:
    def __init__(self, bindings, shell, platform):
        self.bindings, self.shell, self.platform = bindings, shell, platform
        self.problems = []
        self.resolved = 0

    def known_type(self, name):
        return name in self.bindings.types or name in self.shell.types

    def members(self, type_name):
        """generics, methods, cases, props and inits of a type across the bindings and the shell."""
        out = {"generics": [], "inherits": set(), "methods": {}, "cases": {}, "props": {}, "inits": []}
        for index in (self.bindings, self.shell):
            entry = index.types.get(type_name)
            if entry:
                out["generics"] = out["generics"] or entry["generics"]
                out["inherits"] |= entry["inherits"]
                for name, decls in entry["methods"].items():
                    out["methods"].setdefault(name, []).extend(decls)
                out["cases"].update(entry["cases"])
                out["props"].update(entry["props"])
                out["inits"].extend(entry["inits"])
        return out

    def check_files(self, paths):
        """Checks the files of one target: each may use the types the others declare."""
        local = Index()
        for path in paths:
            local.add_file(path, public_only=False)
        for path in paths:
            self.check_file(path, set(local.types) - {None})

    def check_file(self, path, target_types):
        tree, src = swiftsyntax.parse(path)
        self.path, self.src = path, src
        self.local_types = target_types | type_parameters(tree.root_node, src)
        self.vars = {}
        self.collect_vars(tree.root_node)
        self.walk(tree.root_node, {}, None)

    def report(self, node, message):
        self.problems.append(f"{self.path}:{node.start_point[0] + 1}: {message}")

    def collect_vars(self, node):
        """Names declared with a known, non-optional type anywhere in the file (by name)."""
        for child in node.named_children:
            if child.type in ("property_declaration", "parameter"):
                name = child.child_by_field_name("name")
                annotation = next((c for c in child.named_children if c.type in ("type_annotation", "user_type")), None)
                declared = text(annotation, self.src).lstrip(":").strip() if annotation is not None else None
                value = child.child_by_field_name("value")
                kind = declared if declared and split_type(declared) else None
                if kind is None and not declared and value is not None:
                    found = self.expr_type(value, {}, None)
                    kind = found[1] if found and found[0] == "value" else None
                if name is not None and kind and self.known_type(split_type(kind)[0]):
                    key = text(name, self.src)
                    self.vars[key] = kind if self.vars.get(key, kind) == kind else None
            self.collect_vars(child)

    def expr_type(self, node, scope, enclosing):
        """('type', name) or ('value', type text) of an expression, when known."""
        while node.type in ("try_expression", "await_expression", "parenthesized_expression") and node.named_children:
            node = node.named_children[-1]
        if node.type == "simple_identifier" or node.type == "self_expression":
            name = text(node, self.src)
            if name in scope:
                return ("value", scope[name])
            if name == "self" and enclosing:
                return ("value", enclosing)
            if name == "Self" and enclosing:
                return ("type", enclosing)
            if self.known_type(name):
                return ("type", name)
            return ("value", self.vars[name]) if self.vars.get(name) else None
        if node.type == "navigation_expression":
            found = self.member_decls(node, scope, enclosing)
            if found and found[2] == "prop":
                return ("value", found[3]) if found[3] and split_type(found[3]) else None
            return None
        if node.type == "call_expression":
            callee = node.named_children[0]
            found = self.expr_type(callee, scope, enclosing) if callee.type == "simple_identifier" else None
            if found and found[0] == "type":
                return ("value", found[1])
            decl = self.member_decls(callee, scope, enclosing) if callee.type == "navigation_expression" else None
            if decl and decl[2] in ("method", "case"):
                results = {r for _, r in decl[3] if r}
                result = results.pop() if len(results) == 1 else None
                result = decl[0] if result == "Self" else result
                return ("value", result) if result and split_type(result) and self.known_type(split_type(result)[0]) else None
        return None

    def member_decls(self, nav, scope, enclosing):
        """(owner type, member, 'method'|'case'|'prop'|None, decls or prop type, substitution)."""
        target = nav.child_by_field_name("target")
        suffix = nav.child_by_field_name("suffix")
        member_node = suffix.child_by_field_name("suffix") if suffix is not None else None
        if target is None or member_node is None:
            return None
        owner = self.expr_type(target, scope, enclosing)
        parts = split_type(owner[1]) if owner else None
        if not parts or not self.known_type(parts[0]):
            return None
        member = text(member_node, self.src).strip("`")
        info = self.members(parts[0])
        subst = dict(zip(info["generics"], parts[1]))
        if member in info["methods"] or member in info["cases"]:
            decls = info["methods"].get(member, []) + ([info["cases"][member]] if member in info["cases"] else [])
            return parts[0], member, "method" if member in info["methods"] else "case", decls, subst
        if member in info["props"]:
            prop = info["props"][member]
            return parts[0], member, "prop", subst.get(prop, prop), subst
        if any(not self.known_type(base) and base not in CLOSED_PROTOCOLS for base in info["inherits"]):
            return None  # a member of a platform supertype or protocol (NSObject, AsyncSequence...)
        return parts[0], member, None, None, subst

    def walk(self, node, scope, enclosing):
        if node.type in ("class_declaration",) and node.child_by_field_name("name") is not None:
            enclosing = text(node.child_by_field_name("name"), self.src).split("<")[0]
        for child in node.named_children:
            if child.type == "type_identifier":
                self.check_name(text(child, self.src), child)
            elif child.type == "call_expression":
                self.check_call(child, scope, enclosing)
                continue
            elif child.type == "navigation_expression":
                self.check_access(child, scope, enclosing)
            self.walk(child, scope, enclosing)
            if child.type == "property_declaration":
                self.bind_local(child, scope, enclosing)

    def bind_local(self, decl, scope, enclosing):
        """`let x = <expression of known type>` in a closure or function: x has that type from here."""
        name, value = decl.child_by_field_name("name"), decl.child_by_field_name("value")
        if name is not None and value is not None and not any(c.type == "type_annotation" for c in decl.named_children):
            found = self.expr_type(value, scope, enclosing)
            if found and found[0] == "value":
                scope[text(name, self.src)] = found[1]

    def check_name(self, name, node):
        if name[:1].isupper() and name != "Self" and not (self.known_type(name) or name in self.local_types or name in self.platform):
            self.report(node, f"unknown type `{name}`: not in the bindings, the shell, this file or platform_names.txt")

    def check_call(self, call, scope, enclosing):
        callee = call.named_children[0]
        args = arguments(call)
        labels = [a if a == "<closure>" else (text(a, self.src).rstrip(":").strip() if a is not None else None) for a, _ in args]
        decls, what, subst = None, None, {}
        if callee.type == "simple_identifier":
            name = text(callee, self.src)
            if self.known_type(name):
                decls, what = self.members(name)["inits"], f"initializer {name}"
            elif name in self.bindings.functions:
                decls, what = self.bindings.functions[name], f"function {name}"
            else:
                self.check_name(name, callee)
        elif callee.type == "navigation_expression":
            found = self.member_decls(callee, scope, enclosing)
            if found and found[2] in ("method", "case"):
                decls, what, subst = found[3], f"`{found[0]}.{found[1]}`", found[4]
            elif found and found[2] is None:
                self.report(call, f"`{found[0]}` has no member {found[1]}({sig(labels)})")
        elif callee.type == "prefix_expression" and text(callee, self.src).startswith("."):
            member = text(callee, self.src)[1:]
            shapes = [t["cases"][member] for t in self.bindings.types.values() if member in t["cases"]]
            if shapes:
                decls, what = shapes, f"enum case .{member}"
        matching = [params for params, _ in decls or [] if labels_match(labels, params)]
        self.resolved += bool(decls)
        if decls and not matching:
            self.report(call, f"{what} takes other labels than ({sig(labels)})")
        # Walk the callee's target (its member was checked here) and the arguments; closures get
        # their parameter's input type as `$0`.
        target = callee.child_by_field_name("target") if callee.type == "navigation_expression" else callee
        if target is not None:
            self.walk_node(target, scope, enclosing)
        declared = matching[0] if len(matching) == 1 else None
        for position, (label, value) in enumerate(args):
            param = self.param_for(declared, labels, position) if declared else None
            if value is None:
                continue
            if param is not None:
                self.check_implicit_member(value, param.type)
            inner = scope
            if value.type == "lambda_literal" and param is not None:
                input_type = closure_input(param.type)
                input_type = subst.get(input_type, input_type)
                if input_type and split_type(input_type) and self.known_type(split_type(input_type)[0]):
                    inner = dict(scope, **{"$0": input_type}, **{n: input_type for n in lambda_params(value, self.src)[:1]})
            self.walk_node(value, inner, enclosing)

    def walk_node(self, node, scope, enclosing):
        if node.type == "call_expression":
            self.check_call(node, scope, enclosing)
        else:
            if node.type == "navigation_expression":
                self.check_access(node, scope, enclosing)
            self.walk(node, scope, enclosing)

    @staticmethod
    def param_for(declared, labels, position):
        i = 0
        for param in declared:
            if i < len(labels) and labels[i] in (param.label, "<closure>"):
                if i == position:
                    return param
                i += 1
        return None

    def check_implicit_member(self, value, param_type):
        """`.name` given to a parameter of a binding enum type must be one of its cases."""
        if value.type != "prefix_expression" or not text(value, self.src).startswith("."):
            return
        parts = split_type((param_type or "").rstrip("?"))
        if parts and parts[0] in self.bindings.types and self.bindings.types[parts[0]]["cases"]:
            member = text(value, self.src)[1:]
            info = self.members(parts[0])
            if member not in info["cases"] and member not in info["methods"] and member not in info["props"]:
                self.report(value, f"`{parts[0]}` has no case .{member}")

    def check_access(self, nav, scope, enclosing):
        target = nav.child_by_field_name("target")
        if target is not None and target.type == "simple_identifier" and text(target, self.src) not in scope:
            self.check_name(text(target, self.src), target)
        found = self.member_decls(nav, scope, enclosing)
        if found and found[2] is None:
            self.report(nav, f"`{found[0]}` has no member `{found[1]}`")


def lambda_params(lam, src):
    types = next((c for c in lam.named_children if c.type == "lambda_function_type"), None)
    if types is None:
        return []
    plist = next((c for c in types.named_children if c.type == "lambda_function_type_parameters"), None)
    return [text(p, src).split(":")[0].strip() for p in plist.named_children] if plist is not None else []


def type_parameters(node, src):
    """Names of the generic parameters declared in a file."""
    found = set()
    if node.type == "type_parameter":
        found.add(text(node.named_children[0], src))
    for child in node.named_children:
        found |= type_parameters(child, src)
    return found


def sig(labels):
    return "".join(f"{'_' if label is None else label}:" for label in labels)


def shell_files(shell):
    for root, _, names in sorted(os.walk(shell)):
        for name in sorted(names):
            path = os.path.join(root, name)
            if name.endswith(".swift") and "Generated" not in path:
                yield path


def run(bindings_path, shell_paths, files):
    bindings = Index()
    bindings.add_file(bindings_path, public_only=True)
    bindings.types.pop(None, None)
    shell_index = Index()
    for path in shell_paths:
        shell_index.add_file(path, public_only=False)
    shell_index.types.pop(None, None)
    with open(os.path.join(HERE, "platform_names.txt")) as names:
        platform = {w for line in names if not line.startswith("#") for w in line.split()}
    checker = Checker(bindings, shell_index, platform)
    checker.check_files(files)
    return bindings, checker.problems, checker.resolved


SELF_TEST = [
    # (what, where, text, replacement, what the failure must name)
    ("renamed binding method", "bindings", "open func pushVideoFrame(", "open func pushFrame(", "pushVideoFrame"),
    ("removed binding factory", "bindings", "public static func start(store: Store", "static func start(store: Store", "start"),
    ("relabelled binding argument", "bindings", "func linkCommerce(store: Store, platformSessionId:",
     "func linkCommerce(store: Store, liveId:", "linkCommerce"),
    ("removed binding type", "bindings", "public struct PlaneLayout:", "struct PlaneLayout:", "PlaneLayout"),
    ("made-up binding method", "Streamer.swift", "$0.pushAudio(pcm:", "$0.pushSound(pcm:", "pushSound"),
    ("made-up binding type", "Streamer.swift", "try LiveSession(config: config)", "try LiveStream(config: config)", "LiveStream"),
    ("made-up enum case", "Commerce.swift", "Sync(failure: .invalidConfig", "Sync(failure: .invalidSetup", "invalidSetup"),
    ("made-up record field", "Commerce.swift", "pending: c.pending", "pending: c.waiting", "waiting"),
]


def self_test(bindings_path, shell, files):
    """Each mutation must fail with a problem naming it; the unmutated sources must pass."""
    shell_paths = list(shell_files(shell))
    original = open(bindings_path).read()
    failures = 0
    _, problems, _ = run(bindings_path, shell_paths, files)
    print(f"  self-test unmutated: {'ok' if not problems else 'FAILED: ' + '; '.join(problems[:3])}")
    failures += bool(problems)
    with tempfile.TemporaryDirectory() as tmp:
        for title, where, old, new, expect in SELF_TEST:
            mutated_bindings, mutated_shell, mutated_files = bindings_path, shell_paths, files
            if where == "bindings":
                assert old in original, f"self-test: {old!r} is not in the bindings"
                mutated_bindings = os.path.join(tmp, "FieldCastFFI.swift")
                open(mutated_bindings, "w").write(original.replace(old, new))
            else:
                target = next(f for f in shell_paths if f.endswith("/" + where))
                source = open(target).read()
                assert old in source, f"self-test: {old!r} is not in {where}"
                copy = os.path.join(tmp, where)
                open(copy, "w").write(source.replace(old, new))
                mutated_shell = [copy if f == target else f for f in shell_paths]
                mutated_files = [copy if f == target else f for f in files]
            _, problems, _ = run(mutated_bindings, mutated_shell, mutated_files)
            caught = [p for p in problems if expect in p]
            print(f"  self-test {title}: {'caught: ' + os.path.basename(caught[0]) if caught else 'NOT CAUGHT'}")
            failures += not caught
    return failures


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--bindings", required=True)
    args.add_argument("--shell", required=True)
    args.add_argument("--self-test", action="store_true")
    args.add_argument("files", nargs="*")
    opts = args.parse_args()
    if opts.self_test:
        return 1 if self_test(opts.bindings, opts.shell, opts.files) else 0
    bindings, problems, resolved = run(opts.bindings, list(shell_files(opts.shell)), opts.files)
    members = sum(len(t["methods"]) + len(t["inits"]) + len(t["cases"]) for t in bindings.types.values())
    print(f"  index: {len(bindings.types)} binding types, {members} methods/initializers/cases, "
          f"{len(bindings.functions)} functions; {len(opts.files)} files, "
          f"{resolved} calls resolved and checked")
    for problem in problems:
        print(f"    {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
