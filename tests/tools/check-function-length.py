#!/usr/bin/env python3
"""Function length, checked against the code.

Every function body in the C sources of libbanger/, cli/, guest/ and
helpers/ (.c and .h) is measured from the line of its opening brace to
the line of its closing brace, both included.

  over 100 lines  fails, unless the comment right above the function has
                  a line that starts with "Long:" and says why
  over 150 lines  fails

A function named in the debt list (function-length-debt.txt next to
this script: "path function lines reason") may instead be as long as
the lines its entry gives, no longer; it is work not done yet, shown on
every run.  An entry the function no longer needs (gone, or within the
limits above) fails too, so the list only shrinks.

Braces are found by a small lexer (comments, strings, character
constants and preprocessor lines skipped), so the check does not
depend on where a brace sits on its line.  A function is a brace at
file level whose declaration ends with ")" (attributes after it
allowed) and assigns nothing.

Usage: check-function-length.py SRC_DIR [DEBT_LIST]
Prints the ten longest functions and the debt still open; exit 0 when
every function is within its limit, 1 with one line per violation.
"""
import os
import re
import sys

DIRS = ("libbanger", "cli", "guest", "helpers")
SOFT = 100
HARD = 150
MARKER = re.compile(r"^\s*(?:/\*+|\*+|//)?\s*Long:")
KEYWORDS = {
    "void", "int", "char", "short", "long", "unsigned", "signed", "float",
    "double", "bool", "const", "volatile", "static", "inline", "extern",
    "struct", "union", "enum", "restrict", "register", "sizeof",
    "__attribute__", "BANGER_EXTERN",
}


def scan(text):
    """Yield (kind, start_line, end_line, text) for every file-level
    piece: "comment", "decl" (text up to ";"), "func" (declaration text,
    body from the "{" line to the "}" line).  Raises ValueError when the
    braces do not balance."""
    i, n, line = 0, len(text), 1
    depth = 0
    decl, decl_line = [], None
    body_line = None
    at_line_start = blank = True
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            if depth == 0 and decl:
                if blank and balanced("".join(decl)):
                    # a blank line ends what came before (a macro
                    # that expands to functions, used without ";")
                    decl, decl_line = [], None
                else:
                    decl.append(" ")
            at_line_start = blank = True
            i += 1
            continue
        if at_line_start and c in " \t":
            i += 1
            continue
        blank = False
        if at_line_start and c == "#":
            # a preprocessor line, with its continuations
            while i < n and not (text[i] == "\n" and text[i - 1] != "\\"):
                if text[i] == "\n":
                    line += 1
                i += 1
            continue
        at_line_start = False
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            start_line = line
            line += text.count("\n", i, end)
            if depth == 0:
                yield ("comment", start_line, line, text[i:end])
            i = end
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            if depth == 0:
                yield ("comment", line, line, text[i:end])
            i = end
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if depth == 0:
            if c == "{":
                d = "".join(decl).strip()
                if is_function(d):
                    body_line = line
                    func_decl, func_line = d, decl_line
                else:
                    body_line = None
                depth = 1
            elif c == ";":
                if decl:
                    yield ("decl", decl_line, line, "".join(decl).strip())
                decl, decl_line = [], None
            else:
                if decl_line is None and not c.isspace():
                    decl_line = line
                decl.append(c)
        else:
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    if body_line is not None:
                        yield ("func", func_line, (body_line, line), func_decl)
                    # "struct x { ... } name;" goes on to its ";"
                    if body_line is not None:
                        decl, decl_line = [], None
                    body_line = None
        i += 1
    if depth != 0:
        raise ValueError("braces do not balance (a brace inside #if branches?)")


def balanced(text):
    return text.count("(") == text.count(")")


def is_function(decl):
    if not decl.endswith(")"):
        return False
    depth = 0
    for c in decl:
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "=" and depth == 0:
            return False
    return "(" in decl


def function_name(decl):
    """The name before the parameter list: the last parenthesised group
    at top level not opened by an attribute (__attribute__, an upper-case
    macro such as BG_PRINTF)."""
    groups, depth = [], 0
    for i, c in enumerate(decl):
        if c == "(":
            if depth == 0:
                m = re.search(r"([A-Za-z_]\w*)\s*$", decl[:i])
                groups.append(m.group(1) if m else "")
            depth += 1
        elif c == ")":
            depth -= 1
    for name in reversed(groups):
        if name and name not in KEYWORDS and not name.isupper() and not name.startswith("__"):
            return name
    # "void (*handler(int))(int)": the name is inside a group
    for m in re.finditer(r"([A-Za-z_]\w*)\s*\(", decl):
        if m.group(1) not in KEYWORDS and not m.group(1).isupper():
            return m.group(1)
    return decl[:40]


def measure(path):
    """[(lines, name, has_marker, line_of_brace)] for one file."""
    text = open(path, encoding="utf-8", errors="replace").read()
    pieces = list(scan(text))
    out = []
    for idx, (kind, start, span, decl) in enumerate(pieces):
        if kind != "func":
            continue
        name = function_name(decl)
        first = start
        k = idx - 1
        # a prototype of the same function right above (attributes are
        # declared on one) belongs to it: the comment sits above both
        while k >= 0 and pieces[k][0] == "decl" and re.search(r"\b%s\s*\(" % re.escape(name), pieces[k][3]) \
                and pieces[k][2] >= first - 1:
            first = pieces[k][1]
            k -= 1
        marked = False
        if k >= 0 and pieces[k][0] == "comment" and pieces[k][2] >= first - 1:
            # consecutive // lines count as one comment
            while k >= 0 and pieces[k][0] == "comment" and pieces[k][2] >= first - 1:
                marked = marked or any(MARKER.match(l) for l in pieces[k][3].splitlines())
                first = pieces[k][1]
                k -= 1
        lines = span[1] - span[0] + 1
        out.append((lines, name, marked, span[0]))
    return out


def read_debt(path):
    debt = {}
    if not path or not os.path.exists(path):
        return debt
    for no, raw in enumerate(open(path, encoding="utf-8"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split(None, 3)
        if len(f) < 4 or not f[2].isdigit():
            sys.exit(f"{path}:{no}: expected 'path function lines reason'")
        debt[(f[0], f[1])] = (int(f[2]), f[3], no)
    return debt


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    src = sys.argv[1]
    debt_path = sys.argv[2] if len(sys.argv) == 3 else \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "function-length-debt.txt")
    debt = read_debt(debt_path)
    errors, funcs = [], []
    for top in DIRS:
        for root, dirs, files in os.walk(os.path.join(src, top)):
            dirs.sort()
            for f in sorted(files):
                if not f.endswith((".c", ".h")):
                    continue
                path = os.path.join(root, f)
                rel = os.path.relpath(path, src)
                try:
                    for lines, name, marked, at in measure(path):
                        funcs.append((lines, rel, name, marked, at))
                except ValueError as e:
                    errors.append(f"{rel}: cannot measure: {e}")
    funcs.sort(key=lambda t: (-t[0], t[1], t[2]))
    print("longest functions (lines from '{' to '}'):")
    for lines, rel, name, marked, at in funcs[:10]:
        print(f"  {lines:4d} {rel}:{at} {name}{'  (Long:)' if marked else ''}")

    seen = set()
    open_debt = []
    for lines, rel, name, marked, at in funcs:
        key = (rel, name)
        seen.add(key)
        if key in debt:
            cap, reason, no = debt[key]
            if lines > cap:
                errors.append(f"{rel}:{at}: {name} is {lines} lines, more than the {cap} its debt entry "
                              f"({os.path.basename(debt_path)}:{no}) allows")
            elif lines <= SOFT or (marked and lines <= HARD):
                errors.append(f"{os.path.basename(debt_path)}:{no}: {rel} {name} is {lines} lines now: "
                              f"remove its entry")
            else:
                open_debt.append((lines, rel, name, reason))
            continue
        if lines > HARD:
            errors.append(f"{rel}:{at}: {name} is {lines} lines (at most {HARD})")
        elif lines > SOFT and not marked:
            errors.append(f"{rel}:{at}: {name} is {lines} lines: split it, or say why in a "
                          f"'Long:' line of the comment above it")
    for key, (cap, reason, no) in sorted(debt.items(), key=lambda kv: kv[1][2]):
        if key not in seen:
            errors.append(f"{os.path.basename(debt_path)}:{no}: no function {key[1]} in {key[0]}: "
                          f"remove its entry")
    if open_debt:
        print("debt still open (%s):" % os.path.basename(debt_path))
        for lines, rel, name, reason in open_debt:
            print(f"  {lines:4d} {rel} {name}: {reason}")
    long_ok = [(l, r, n) for l, r, n, m, _ in funcs if m and l > SOFT]
    if long_ok:
        print("over %d lines, with a reason (Long:):" % SOFT)
        for lines, rel, name in long_ok:
            print(f"  {lines:4d} {rel} {name}")
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
