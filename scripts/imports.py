#!/usr/bin/env python3
"""Import graph of the crate's source files, from their `use crate::...`/`use super::...`
lines (and `crate::a::b` paths written inline), and the loops in it.

    python3 scripts/imports.py                 # loops between files of each directory,
                                               # and between top-level modules
    python3 scripts/imports.py src/executor    # one directory: its edges and loops
    python3 scripts/imports.py --check         # exit 1 when a checked scope has a loop

A file imports another when it names an item of that file's module. Test files
(`tests.rs`, `*_tests.rs`, `tests/`) and `#[cfg(test)]` modules are left out: tests may
reach anywhere. Scopes checked by --check: every directory below src/executor, and the
pair image/ <-> store/ (issue 13 of the project).
"""
import os
import re
import sys
from collections import defaultdict

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
SRC = os.path.normpath(SRC)

PATH_RE = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def module_files():
    """Maps module paths ('executor::stage') to files, and files to module paths."""
    by_mod, by_file = {}, {}
    for dirpath, _dirs, files in os.walk(SRC):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
            if rel[-1] in ("mod", "lib", "main"):
                rel = rel[:-1]
            mod = "::".join(rel)
            by_mod[mod] = path
            by_file[path] = mod
    return by_mod, by_file


def is_test_file(path):
    base = os.path.basename(path)
    parts = os.path.relpath(path, SRC).split(os.sep)
    return base == "tests.rs" or base.endswith("_tests.rs") or "tests" in parts[:-1] \
        or base in ("testutil.rs", "proptests.rs")


def strip_tests(text):
    """Drops `#[cfg(test)] mod x { ... }` blocks and comments."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def expand_uses(text):
    """Yields full paths from `use` trees (`a::{b, c::d}`) and inline `crate::` paths."""
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        yield from flatten_tree(re.sub(r"\s+", "", m.group(1)))
    for m in PATH_RE.finditer(text):
        yield m.group(1) + m.group(2)


def flatten_tree(tree, prefix=""):
    depth, start, items = 0, 0, []
    brace = tree.find("{")
    if brace < 0:
        yield prefix + tree
        return
    head, body = tree[:brace], tree[brace + 1:tree.rfind("}")]
    for i, c in enumerate(body):
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    items.append(body[start:])
    for item in items:
        if item:
            yield from flatten_tree(item, prefix + head)


def resolve(path, by_mod):
    """The file a `crate::` path points into (its longest module prefix)."""
    parts = path.split("::")
    if parts[0] != "crate":
        return None
    segs = parts[1:]
    for n in range(len(segs), 0, -1):
        cand = "::".join(segs[:n])
        if cand in by_mod:
            return by_mod[cand]
    return None


def graph():
    by_mod, by_file = module_files()
    edges = defaultdict(set)
    for path, mod in by_file.items():
        if is_test_file(path):
            continue
        with open(path, encoding="utf-8") as f:
            text = strip_tests(f.read())
        for used in expand_uses(text):
            target = resolve(fix_super(used, mod), by_mod)
            if target and target != path and not is_test_file(target):
                edges[path].add(target)
    return edges


def fix_super(used, mod):
    """Rewrites `super::`/`self::` paths to `crate::` paths for `mod`."""
    parts = used.split("::")
    if parts[0] not in ("super", "self"):
        return used
    cur = mod.split("::") if mod else []
    i = 1 if parts[0] == "self" else 0
    while i < len(parts) and parts[i] == "super":
        cur = cur[:-1]
        i += 1
    return "::".join(["crate"] + cur + parts[i:])


def sccs(nodes, edges):
    """Tarjan's strongly connected components with more than one node."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in nodes:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def rel(path):
    return os.path.relpath(path, SRC)


def directory_scope(edges, directory):
    """Files below `directory` (recursively), edges among them."""
    nodes = {p for p in set(edges) | {t for ts in edges.values() for t in ts}
             if os.path.abspath(p).startswith(os.path.abspath(directory) + os.sep)}
    return nodes, {p: {t for t in edges.get(p, ()) if t in nodes} for p in nodes}


def module_scope(edges, a, b):
    """Top-level modules `a` and `b` as two nodes."""
    def top(p):
        return rel(p).split(os.sep)[0].replace(".rs", "")
    agg = defaultdict(set)
    for p, ts in edges.items():
        for t in ts:
            if top(p) in (a, b) and top(t) in (a, b) and top(p) != top(t):
                agg[top(p)].add(top(t))
    return {a, b}, agg


def report(label, nodes, scoped):
    loops = sccs(nodes, scoped)
    count = sum(len(v) for v in scoped.values())
    print(f"{label}: {len(nodes)} files, {count} imports, "
          f"{len(loops)} loop(s)")
    for comp in loops:
        names = [rel(c) if os.sep in c or c.endswith('.rs') else c for c in comp]
        print("  loop: " + ", ".join(names))
    return bool(loops)


def main(argv):
    edges = graph()
    check = "--check" in argv
    dirs = [a for a in argv if not a.startswith("--")]
    bad = False
    if dirs:
        for d in dirs:
            nodes, scoped = directory_scope(edges, os.path.abspath(d))
            bad |= report(d, nodes, scoped)
            for p in sorted(scoped):
                for t in sorted(scoped[p]):
                    print(f"  {rel(p)} -> {rel(t)}")
        return 1 if (check and bad) else 0
    executor = os.path.join(SRC, "executor")
    nodes, scoped = directory_scope(edges, executor)
    bad |= report("src/executor (all files below it)", nodes, scoped)
    nodes, scoped = module_scope(edges, "image", "store")
    bad |= report("image/ <-> store/", nodes, scoped)
    for d in sorted(os.listdir(SRC)):
        full = os.path.join(SRC, d)
        if os.path.isdir(full) and d != "executor":
            n, s = directory_scope(edges, full)
            report(f"src/{d}", n, s)
    return 1 if (check and bad) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
