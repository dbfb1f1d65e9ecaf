#!/usr/bin/env python3
"""Validates JSON files against a JSON Schema (draft 2020-12) with the `jsonschema` package.

Usage: validate_json.py SCHEMA FILE...   Exit 0 when every file is valid; else prints each
error with its file and JSON path and exits 1. Used by tests/tests/schema_files.rs as a
validator independent of the gateway's own code.

A document giving one key twice in an object is an error too: JSON Schema validates the parsed
value, and Python's json module (like serde_json) silently keeps the last value, so the check
is made while parsing. The adapters refuse such documents; the two validators must agree.
"""
import json
import sys

import jsonschema


class DuplicateKey(ValueError):
    pass


def refuse_duplicates(pairs):
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(f"key {key!r} given twice")
        seen[key] = value
    return seen


def main() -> int:
    schema = json.load(open(sys.argv[1], encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    failed = 0
    for path in sys.argv[2:]:
        try:
            document = json.load(
                open(path, encoding="utf-8"), object_pairs_hook=refuse_duplicates
            )
        except DuplicateKey as error:
            failed += 1
            print(f"{path}: {error}")
            continue
        for error in validator.iter_errors(document):
            failed += 1
            print(f"{path}: {error.json_path}: {error.message}")
    print(f"{len(sys.argv) - 2} file(s) checked, {failed} error(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
