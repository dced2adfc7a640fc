"""Every notification kind the code can send, found in the source (so a new one is noticed).

A kind is what is given to Notification(...) as its first argument or `kind=`, followed back
to string literals: a variable to what is assigned to it in the function (tuple unpacking too),
a parameter to what every caller in the package passes for it, a module constant to its value,
an attribute `x.announce` to the
literals returned by functions named `announce`/`_announce` or given as `announce=...` (a tuple's
first element, for `kind, level, message = lesson.notice`). Kinds are snake_case words; a site
that cannot be followed to any is reported, so the docs table cannot silently miss one.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "v2g_gateway"
KIND = re.compile(r"^[a-z]+(_[a-z]+)+$")


@dataclass
class _Index:
    funcs: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = field(default_factory=dict)
    calls: list[tuple[ast.Call, ast.AST]] = field(default_factory=list)  # (call, its function)
    keywords: list[ast.keyword] = field(default_factory=list)
    constants: dict[str, set[str]] = field(default_factory=dict)  # module-level NAME = "..."


def _index(trees: list[ast.Module]) -> _Index:
    idx = _Index()
    for tree in trees:
        for f in ast.walk(tree):
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef):
                idx.funcs.setdefault(f.name, []).append(f)
                for c in ast.walk(f):
                    if isinstance(c, ast.Call):
                        idx.calls.append((c, f))
        for c in ast.walk(tree):
            if isinstance(c, ast.Call):
                idx.keywords += c.keywords
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign | ast.AnnAssign) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                v = stmt.value
                if isinstance(v, ast.Constant) and isinstance(v.value, str):
                    for t in targets:
                        if isinstance(t, ast.Name):
                            idx.constants.setdefault(t.id, set()).add(v.value)
    return idx


class _Resolver:
    def __init__(self, idx: _Index) -> None:
        self.idx = idx
        self._busy: set[int] = set()

    def expr(self, node: ast.AST, func: ast.AST, first: bool = False) -> set[str]:
        """The strings `node` can hold; `first`: the first element of a tuple it holds."""
        if id(node) in self._busy:
            return set()
        self._busy.add(id(node))
        try:
            return self._expr(node, func, first)
        finally:
            self._busy.discard(id(node))

    def _expr(self, node: ast.AST, func: ast.AST, first: bool) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and not first:
            return {node.value}
        if isinstance(node, ast.Tuple) and first and node.elts:
            return self.expr(node.elts[0], func)
        if isinstance(node, ast.IfExp):
            return self.expr(node.body, func, first) | self.expr(node.orelse, func, first)
        if isinstance(node, ast.Name):
            return self._name(node.id, func, first)
        if isinstance(node, ast.Attribute):
            return self._attribute(node.attr, first)
        return set()

    def _name(self, name: str, func: ast.AST, first: bool) -> set[str]:
        out: set[str] = set()
        for node in ast.walk(func):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == name:
                    out |= self.expr(node.value, func, first)
                elif isinstance(target, ast.Tuple):
                    names = [t.id if isinstance(t, ast.Name) else None for t in target.elts]
                    if name not in names:
                        continue
                    i = names.index(name)
                    if isinstance(node.value, ast.Tuple):
                        out |= self.expr(node.value.elts[i], func)
                    elif i == 0:  # kind, level, message = something.notice
                        out |= self.expr(node.value, func, first=True)
        if out or not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            return out or (set() if first else self.idx.constants.get(name, set()))
        params = [a.arg for a in func.args.args]
        if name not in params and not first:
            return self.idx.constants.get(name, set())  # a module constant, e.g. CLOCK_SKEW
        if name in params:  # what the callers pass
            i = params.index(name) - (1 if params and params[0] == "self" else 0)
            for call, caller in self.idx.calls:
                if getattr(call.func, "attr", getattr(call.func, "id", None)) != func.name:
                    continue
                arg = call.args[i] if len(call.args) > i else None
                arg = arg or next((k.value for k in call.keywords if k.arg == name), None)
                if arg is not None:
                    out |= self.expr(arg, caller, first)
        return out

    def _attribute(self, attr: str, first: bool) -> set[str]:
        out: set[str] = set()
        for fname in (attr, f"_{attr}"):
            for f in self.idx.funcs.get(fname, []):
                for r in ast.walk(f):
                    if isinstance(r, ast.Return) and r.value is not None:
                        out |= self.expr(r.value, f, first)
        for k in self.idx.keywords:
            if k.arg == attr:
                out |= self.expr(k.value, k, first)
        return out


def scan() -> tuple[set[str], list[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    trees = [ast.parse(p.read_text()) for p in paths]
    idx = _index(trees)
    res = _Resolver(idx)
    kinds: set[str] = set()
    unresolved: list[str] = []
    for path, tree in zip(paths, trees, strict=True):
        for f in ast.walk(tree):
            if not isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for call in ast.walk(f):
                if not (
                    isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Notification"
                ):
                    continue
                arg = (
                    call.args[0]
                    if call.args
                    else next((k.value for k in call.keywords if k.arg == "kind"), None)
                )
                found = {s for s in res.expr(arg, f) if KIND.match(s)} if arg is not None else set()
                if not found:
                    unresolved.append(f"{path.relative_to(PACKAGE.parent)}:{call.lineno}")
                kinds |= found
    return kinds, sorted(set(unresolved))


def code_kinds() -> set[str]:
    kinds, unresolved = scan()
    assert not unresolved, (
        f"a Notification kind that cannot be followed to string literals at {unresolved}: "
        "make it one (or extend tests/unit/docs/event_kinds.py), so docs/mqtt.md can be checked"
    )
    return kinds
