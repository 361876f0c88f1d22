#!/usr/bin/env python3
"""Check that a RESULTS.json has the documented layout (perf/results_schema.py,
perf/README.md): it parses, has {"meta": {...}, "rows": [...]}, every row has a
known kind and carries every common field and every field of its kind, each
of the documented type or null, and (name, kind) is unique. No thresholds, no
timing: what the figures are does not matter here.

Usage: python3 perf/check_results.py FILE
Exit 0 and one line on success; exit 1 with one line per problem, naming the
row and the field, otherwise.
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_schema as S  # noqa: E402


def check(doc):
    errs = []
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict) or not isinstance(doc.get("rows"), list):
        return ['top level: expected {"meta": {...}, "rows": [...]}']
    meta, rows = doc["meta"], doc["rows"]
    for name, tag, _, _ in S.META:
        if name not in meta:
            errs.append(f"meta: missing field '{name}'")
        elif not S.type_ok(tag, meta[name]):
            errs.append(f"meta: field '{name}' is {type(meta[name]).__name__}, expected {tag} or null")
    if meta.get("schema") != S.SCHEMA:
        errs.append(f"meta: schema is {meta.get('schema')!r}, this checker knows {S.SCHEMA}")
    if not rows:
        errs.append("rows: empty (no run was reported)")
    seen = set()
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            errs.append(f"row {i}: not an object")
            continue
        label = f"row {i} ({r.get('name', '?')}, kind {r.get('kind', '?')})"
        kind = r.get("kind")
        if kind not in S.KIND_FIELDS:
            errs.append(f"{label}: unknown kind {kind!r} (known: {', '.join(S.KINDS)})")
        for name, tag, _, _ in S.fields_of(kind):
            if name not in r:
                errs.append(f"{label}: missing field '{name}'")
            elif not S.type_ok(tag, r[name]):
                errs.append(f"{label}: field '{name}' is {type(r[name]).__name__} {r[name]!r:.40}, expected {tag} or null")
        for name in ("name", "kind", "date", "commit"):
            if r.get(name) in (None, ""):
                errs.append(f"{label}: field '{name}' is empty")
        key = (r.get("name"), kind)
        if key in seen:
            errs.append(f"{label}: a second row with this name and kind")
        seen.add(key)
    return errs


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = sys.argv[1]
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        print(f"{path}: cannot read: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"{path}: not JSON: {e}", file=sys.stderr)
        return 1
    errs = check(doc)
    if errs:
        for e in errs:
            print(f"{path}: {e}", file=sys.stderr)
        return 1
    kinds = {}
    for r in doc["rows"]:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(f"{path}: ok, {len(doc['rows'])} rows ("
          + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
