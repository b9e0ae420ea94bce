#!/usr/bin/env python3
"""Import circles between the files of src/: pairs of files that import each
other, and longer cycles. STYLE.md: "Two files never import each other."

An edge A -> B is any path in A's code (a `use` or a path written inline)
that names an item of the module B is the file of: `crate::…`, `super::…`,
`self::…`. Comments, strings and `#[cfg(test)]` code are left out, since
tests may reach anywhere; `--tests` counts them too. A file importing its
own parent module (`super::Item`) while the parent imports it back is a
circle too, and is listed apart, since the fix differs (move the shared
item into the child, or a third file).

Usage: scripts/import-circles.py [--tests] [--edges] [SRC]
Exit status 1 when a circle is found.
"""

import re
import sys
from pathlib import Path


def module_of(path: Path, src: Path):
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts in (["lib"], ["main"]):
        return ()
    if parts[-1] == "mod":
        parts = parts[:-1]
    return tuple(parts)


def strip(text: str) -> str:
    """Comments and string/char literals blanked, newlines kept."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif re.match(r'b?r#*"', text[i:i + 12]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i)):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1b}'), not a lifetime ('a).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_code(text: str) -> str:
    """`#[cfg(test)]` items (a `mod tests { … }`, a `fn`, a `use`) blanked."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        j = m.end()
        # The item ends at its `;` or at the brace closing its first `{`.
        depth = 0
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    j += 1
                    break
            elif text[j] == ";" and depth == 0:
                j += 1
                break
            j += 1
        out.append("\n" * text.count("\n", m.start(), j))
        i = j
    out.append(text[i:])
    return "".join(out)


def use_paths(tree: str):
    """The full paths of a use tree: `crate::{a, b::{c, d as e}}`."""
    tokens = re.findall(r"::|[{},*]|[A-Za-z_][A-Za-z0-9_]*", tree)
    pos = 0

    def parse(prefix):
        nonlocal pos
        paths, path = [], list(prefix)
        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos] != "}":
                    paths += parse(path)
                    if pos < len(tokens) and tokens[pos] == ",":
                        pos += 1
                pos += 1
                return paths
            if tok in (",", "}"):
                break
            if tok == "as":
                pos += 2
                continue
            if tok != "::":
                path.append(tok)
            pos += 1
        paths.append(path)
        return paths

    return parse([])


def resolve(path, here, modules):
    """The module (a file's) that `path`, written in module `here`, names."""
    if not path:
        return None
    if path[0] == "crate":
        base, rest = (), path[1:]
    elif path[0] in ("super", "self"):
        base, rest = here, path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    elif here + (path[0],) in modules:
        # A child module named from its parent (`use unknown::Rows;`).
        base, rest = here, path
    else:
        return None
    candidate = base + tuple(rest)
    while candidate not in modules and candidate:
        candidate = candidate[:-1]
    return candidate if candidate in modules else None


def inline_modules(text):
    """(start, end, name) of each `mod name { … }` written inside a file."""
    found = []
    for m in re.finditer(r"\bmod\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{", text):
        depth, j = 0, m.end() - 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        found.append((m.start(), j, m.group(1)))
    return found


def scope_at(pos, here, inline):
    """The module a position of the file is in: `here`, or an inline one."""
    names = [name for start, end, name in inline if start < pos < end]
    return here + tuple(names)


def edges_of(text, here, modules):
    found = set()
    inline = inline_modules(text)
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        scope = scope_at(m.start(), here, inline)
        for path in use_paths(m.group(1)):
            target = resolve(path, scope, modules)
            if target is not None:
                found.add(target)
    without_uses = re.sub(r"\buse\s+[^;]+;", lambda m: " " * len(m.group(0)), text)
    for m in re.finditer(r"(?<![\w$:])([a-z_][a-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)+)", without_uses):
        scope = scope_at(m.start(), here, inline)
        target = resolve(m.group(1).split("::"), scope, modules)
        if target is not None:
            found.add(target)
    found.discard(here)
    return found


def cycles(graph):
    """Strongly connected components of more than one file (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    tests = "--tests" in sys.argv
    src = Path(args[0] if args else "src")
    files = {}
    for path in sorted(src.rglob("*.rs")):
        if path.name == "main.rs" and path.parent == src:
            continue
        files[module_of(path, src)] = path
    modules = set(files)
    graph, names = {}, {m: str(p.relative_to(src.parent)) for m, p in files.items()}
    for module, path in files.items():
        text = strip(path.read_text())
        if not tests:
            text = drop_test_code(text)
        graph[module] = edges_of(text, module, modules)
    if "--edges" in sys.argv:
        for module in sorted(graph):
            for target in sorted(graph[module]):
                print(f"{names[module]} -> {names[target]}")
    pairs = sorted(
        (a, b) for a in graph for b in graph[a] if a < b and a in graph.get(b, ())
    )
    family = [(a, b) for a, b in pairs if a == b[:-1] or b == a[:-1]]
    strangers = [p for p in pairs if p not in family]
    print(f"{len(files)} files, {sum(len(v) for v in graph.values())} edges"
          f"{' (tests counted)' if tests else ' (tests left out)'}")
    for title, group in (("files importing each other", strangers),
                         ("a module and its own submodule importing each other", family)):
        print(f"{title}: {len(group) or 'none'}")
        for a, b in group:
            print(f"  {names[a]} <-> {names[b]}")
    # A child naming its own ancestors is how a module's files share its
    # types; the pairs above show where that runs both ways. Without those
    # edges, a cycle is one among files that are not parent and child.
    upward = {a: {b for b in graph[a] if a[:len(b)] != b} for a in graph}
    longer = [c for c in cycles(upward) if len(c) > 2]
    print(f"longer cycles (a child naming its ancestors aside): {len(longer) or 'none'}")
    for comp in longer:
        print("  " + ", ".join(names[m] for m in comp))
    sys.exit(1 if pairs or longer else 0)


if __name__ == "__main__":
    main()
