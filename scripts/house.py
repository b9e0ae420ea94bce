#!/usr/bin/env python3
"""The house's size targets (STYLE.md): production lines per file and lines
per function, tests aside. Prints the longest of each and exits 1 when a
file passes 800 lines or a function 80 without a comment at its top saying
why (a line starting with `// Long:` right above or inside its first lines).

Usage: scripts/house.py [--top N] [src]
"""
import os
import re
import sys

FILE_LIMIT = 800
FN_LIMIT = 80
FN_START = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)')


def strip_strings(line):
    """The line without string and char literals or a trailing comment, so
    that braces inside them are not counted (good enough for this code)."""
    line = re.sub(r'r#*"[^"]*"#*', '""', line)
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split('//', 1)[0]


def production_lines(lines):
    """Lines before the first `#[cfg(test)]` followed by a `mod`."""
    for i, line in enumerate(lines):
        if line.strip() == '#[cfg(test)]' and i + 1 < len(lines) and re.match(r'\s*(pub(\(crate\))?\s+)?mod\s', lines[i + 1]):
            if lines[i + 1].rstrip().endswith(';'):
                continue
            return lines[:i]
    return lines


def functions(lines):
    """(name, first line, length, excused) of each fn in `lines`."""
    out = []
    i = 0
    in_block_string = False
    while i < len(lines):
        m = FN_START.match(lines[i])
        if not m:
            i += 1
            continue
        depth = 0
        opened = False
        j = i
        while j < len(lines):
            text = strip_strings(lines[j])
            if not opened and ';' in text and '{' not in text:
                break
            depth += text.count('{') - text.count('}')
            if '{' in text:
                opened = True
            if opened and depth <= 0:
                break
            j += 1
        if opened:
            length = j - i + 1
            head = ''.join(lines[max(0, i - 3):i + 4])
            out.append((m.group(6), i + 1, length, '// Long:' in head))
            i += 1  # nested fns are measured on their own too
        else:
            i = j + 1
    return out


def main():
    args = sys.argv[1:]
    top = 5
    if args[:1] == ['--top']:
        top = int(args[1])
        args = args[2:]
    root = args[0] if args else 'src'
    files, fns = [], []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if not name.endswith('.rs') or name == 'tests.rs' or dirpath.endswith('/tests'):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding='utf-8') as f:
                lines = f.readlines()
            prod = production_lines(lines)
            excused = any('// Long:' in l for l in lines[:15])
            files.append((len(prod), path, excused))
            fns += [(n, length, path, start, ok) for (n, start, length, ok) in functions(prod)]
    files.sort(reverse=True)
    fns.sort(key=lambda f: -f[1])
    print(f'longest files (production lines; limit {FILE_LIMIT}):')
    for n, path, ok in files[:top]:
        print(f'  {n:5} {path}' + ('  (says why)' if ok else ''))
    print(f'longest functions (lines; limit {FN_LIMIT}):')
    for name, length, path, start, ok in fns[:top]:
        print(f'  {length:5} {path}:{start} {name}' + ('  (says why)' if ok else ''))
    bad = [f for f in files if f[0] > FILE_LIMIT and not f[2]] + [f for f in fns if f[1] > FN_LIMIT and not f[4]]
    if bad:
        print(f'{len(bad)} over the limits without saying why:')
        for f in bad:
            print('  ', f[:4] if len(f) > 3 else f)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
