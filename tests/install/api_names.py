#!/usr/bin/env python3
"""api_names.py - the public API's function names, from one of its sources.

    api_names.py header include/gemroute.h [MORE.h ...]
                                             functions the headers declare
    api_names.py map client/libgemroute.map  the version script's globals

Prints one name a line, sorted.  For the header, a declaration without the
GR_API marker is an error (printed as FILE:LINE, exit 1): hidden by
-fvisibility=hidden, it would be missing from libgemroute.so.
"""
import re
import sys


def strip_comments(text):
    """Comments become blanks, newlines kept (so line numbers stay)."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r"/\*.*?\*/|//[^\n]*", blank, text, flags=re.S)


def header_functions(text):
    """(names, errors): every top-level function declaration's name, and
    "LINE: ..." for each one GR_API does not mark."""
    text = strip_comments(text)
    lines = text.split("\n")
    # Preprocessor lines (with their continuations) and extern "C" are not
    # C declarations.
    out, cont = [], False
    for line in lines:
        if cont or line.lstrip().startswith("#"):
            cont = line.rstrip().endswith("\\")
            out.append("")
            continue
        out.append(line.replace('extern "C" {', ""))
    text = "\n".join(out)
    names, errors = [], []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth = max(depth - 1, 0)
            if ch == "}" and depth == 0 and not text[start:i].strip():
                start = i + 1   # the closing brace of extern "C"
        elif ch == ";" and depth == 0:
            decl, dstart = text[start:i], start
            start = i + 1
            flat = " ".join(decl.split())
            if flat.startswith("typedef") or "(" not in flat:
                continue
            if flat.startswith(("struct ", "enum ", "union ")) and \
                    "{" in flat.split("(")[0]:
                continue
            m = re.search(r"(\w+)\s*\(", decl)
            if m is None:
                continue
            names.append(m.group(1))
            if not re.match(r"GR_API\b", flat):
                line = text.count("\n", 0, dstart + m.start(1)) + 1
                errors.append("%d: %s is declared without GR_API"
                              % (line, m.group(1)))
    return sorted(names), errors


def map_globals(text):
    """The names between global: and local: of the version script."""
    text = strip_comments(text)
    m = re.search(r"global\s*:(.*?)(local\s*:|\})", text, flags=re.S)
    if m is None:
        return []
    return sorted(n.strip() for n in m.group(1).split(";") if n.strip())


def main(argv):
    if len(argv) < 3 or argv[1] not in ("header", "map") or \
            (argv[1] == "map" and len(argv) != 3):
        sys.stderr.write(__doc__)
        return 2
    names, errors = [], []
    for path in argv[2:]:
        with open(path) as f:
            text = f.read()
        if argv[1] == "map":
            found, errs = map_globals(text), []
            if not re.search(r"local\s*:\s*\*\s*;", strip_comments(text)):
                errs = ["0: no 'local: *;' (everything else must be local)"]
        else:
            found, errs = header_functions(text)
        names += found
        errors += ["%s:%s" % (path, e) for e in errs]
    for n in sorted(names):
        print(n)
    for e in errors:
        sys.stderr.write(e + "\n")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
