"""Every notification kind the code can send, found in the source (so a new one is noticed).

A kind is a string given to Notification(...) as its first argument or `kind=`; when that is a
variable, the strings assigned to it in the same function (also by tuple unpacking), or, when it
is a parameter, the strings passed for it by every caller in the package (`_tell_once`). A kind
carried in a `notice=("kind", level, message)` tuple (dispatch lessons) counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "v2g_gateway"


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def _assigned(func: ast.AST, name: str) -> list[str]:
    out: list[str] = []
    for node in ast.walk(func):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if isinstance(target, ast.Name) and target.id == name:
                out += _strings(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                for t, v in zip(target.elts, node.value.elts, strict=False):
                    if isinstance(t, ast.Name) and t.id == name:
                        out += _strings(v)
    return out


def code_kinds() -> set[str]:
    kinds, unresolved = scan()
    assert not unresolved, (
        "a Notification kind that is not a string literal (nor a variable or parameter set from "
        f"literals) at {unresolved}: make it one, so docs/mqtt.md can be checked against it"
    )
    return kinds


def scan() -> tuple[set[str], list[str]]:
    trees = {p: ast.parse(p.read_text()) for p in PACKAGE.rglob("*.py")}
    kinds: set[str] = set()
    unresolved: list[str] = []
    wanted_params: list[tuple[str, int]] = []  # (function name, positional index) to resolve
    for path, tree in trees.items():
        funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        for func in funcs:
            for call in ast.walk(func):
                if not (
                    isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Notification"
                ):
                    continue
                arg = (
                    call.args[0]
                    if call.args
                    else next((k.value for k in call.keywords if k.arg == "kind"), None)
                )
                if arg is None:
                    continue
                found = _strings(arg)
                if not found and isinstance(arg, ast.Name):
                    found = _assigned(func, arg.id)
                    params = [a.arg for a in func.args.args]
                    if not found and arg.id in params:
                        wanted_params.append((func.name, params.index(arg.id)))
                        continue
                if not found:
                    unresolved.append(f"{path.relative_to(PACKAGE.parent)}:{call.lineno}")
                kinds.update(found)
    for tree in trees.values():
        for call in ast.walk(tree):
            if isinstance(call, ast.Call):
                for k in call.keywords:
                    if k.arg == "notice" and isinstance(k.value, ast.Tuple) and k.value.elts:
                        kinds.update(_strings(k.value.elts[0]))
    for name, index in wanted_params:
        for tree in trees.values():
            for call in ast.walk(tree):
                if isinstance(call, ast.Call) and getattr(call.func, "attr", None) == name:
                    pos = index - 1  # a method: self is not passed
                    if len(call.args) > pos:
                        kinds.update(_strings(call.args[pos]))
    return kinds, sorted(set(unresolved))
