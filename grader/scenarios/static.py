"""Judging a submission's code by parsing it, never by grepping (CONTRACT.md, probe pitfalls)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from grader.checkout import UnsafePath, directory_problem, read_text, walk

_SECRET_NAME = re.compile(r"secret|jwt_?key|signing_?key", re.IGNORECASE)
_GETENV_FUNCS = {"getenv", "get", "setdefault"}
# The name of a variable ("JWT_SECRET_KEY") or a sentence is not a secret value.
_NOT_A_SECRET = re.compile(r"^[A-Z][A-Z0-9_]*$|\s")
_ENV_COMMENT = re.compile(r"\s+#.*$")  # as dotenv reads it: a comment needs a space before its '#'
API_DIR = "src/api"


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the checkout
    line: int
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


def python_files(checkout: Path) -> Iterator[str]:
    """The .py files of ``src/api`` (paths relative to the checkout), reached without following
    a link (one may point out of the checkout: ``src`` or ``src/api`` as a link yields nothing),
    however deep the tree."""
    for entry in walk(checkout, API_DIR):
        parts = entry.relative.split("/")
        if entry.kind != "file" or not entry.relative.endswith(".py"):
            continue
        if any(part.startswith(".") or part in {"tests", "venv", ".venv"} for part in parts[:-1]):
            continue
        yield f"{API_DIR}/{entry.relative}"


def api_dir_problem(checkout: Path) -> str | None:
    """Why ``src/api`` is not a folder of the checkout (missing, or a link: never followed), or None."""
    problem = directory_problem(checkout, API_DIR)
    return None if problem is None else "src/api is missing" if problem.endswith("is missing") else problem


def _source(checkout: Path, relative: str) -> str:
    """The file's text, read without following a link and only up to a source file's size (a
    file over it reads as empty: it is no hand-written source)."""
    try:
        return read_text(checkout, relative)
    except UnsafePath:
        return ""


def _line(source: str, number: int) -> str:
    lines = source.splitlines()
    return lines[number - 1].strip()[:160] if 0 < number <= len(lines) else ""


def print_calls(checkout: Path) -> tuple[list[Finding], list[str]]:
    """Every ``print(...)`` call in src/api; files that do not parse are read token by token."""
    findings: list[Finding] = []
    unreadable: list[str] = []
    for relative in python_files(checkout):
        source = _source(checkout, relative)
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            lines, ok = _print_tokens(source)
            findings += [Finding(relative, n, _line(source, n)) for n in lines]
            if not ok:
                unreadable.append(relative)
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_print(node.func):
                findings.append(Finding(relative, node.lineno, _line(source, node.lineno)))
    return findings, unreadable


def _is_print(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "print"
    # builtins.print(...) is the same call; obj.print_summary() is not.
    return isinstance(func, ast.Attribute) and func.attr == "print" and \
        isinstance(func.value, ast.Name) and func.value.id == "builtins"


def _print_tokens(source: str) -> tuple[list[int], bool]:
    """Lines with a ``print`` name followed by ``(`` that is not an attribute or a definition."""
    found: list[int] = []
    previous: list[tokenize.TokenInfo] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
                continue
            if (token.string == "(" and previous and previous[-1].string == "print"
                    and previous[-1].type == tokenize.NAME
                    and not (len(previous) > 1 and previous[-2].string in {".", "def"})):
                found.append(previous[-1].start[0])
            previous = (previous + [token])[-2:]
    except tokenize.TokenError:
        return found, True  # unbalanced brackets: raised at end of file, every token was seen
    except (IndentationError, SyntaxError):
        return found, False
    return found, True


def hardcoded_secrets(checkout: Path) -> list[Finding]:
    """Non-empty string literals given as the default of a JWT secret.

    Caught: ``JWT_SECRET_KEY: str = "..."``, ``SECRET = "..."``, ``Field("...")`` or
    ``Field(default="...")`` on such a name, ``os.getenv("JWT_SECRET_KEY", "...")`` and
    ``environ.get(...)``. Collections of known placeholders (a validator's deny list) are not
    defaults and are ignored.
    """
    findings: list[Finding] = []
    for relative in python_files(checkout):
        source = _source(checkout, relative)
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            literal = _secret_default(node)
            if literal is not None:
                findings.append(Finding(relative, node.lineno, _line(source, node.lineno)))
    return findings


def _secret_default(node: ast.AST) -> str | None:
    if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [_name_of(target) for target in targets]
        if any(name and _SECRET_NAME.search(name) for name in names):
            return _literal_default(node.value)
    if isinstance(node, ast.Call) and _call_name(node.func) in _GETENV_FUNCS and len(node.args) >= 2:
        key = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
        if isinstance(key, str) and _SECRET_NAME.search(key):
            return _string(node.args[1]) or None
    return None


def _literal_default(value: ast.expr) -> str | None:
    direct = _string(value)
    if direct:
        return direct
    if isinstance(value, ast.Call) and _call_name(value.func) == "Field":
        for arg in value.args[:1]:
            if _string(arg):
                return _string(arg)
        for keyword in value.keywords:
            if keyword.arg == "default" and _string(keyword.value):
                return _string(keyword.value)
    return None


def _name_of(target: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return None


def _call_name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _string(node: ast.expr) -> str | None:
    """A string literal that could be a secret value (not a variable name, not a sentence)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if node.value and not _NOT_A_SECRET.search(node.value):
            return node.value
    return None


def env_example_value(checkout: Path, variable: str) -> tuple[str | None, str]:
    """The value ``.env.example`` suggests for ``variable`` (``""`` when listed empty, quotes and
    trailing comments removed), or None; with one line saying what was seen.

    A line that sets the variable wins over a commented-out one (``# JWT_SECRET_KEY=...``).
    Read without following a link and up to a source file's size (``grader.checkout``).
    """
    try:
        text = read_text(checkout, ".env.example")
    except UnsafePath as exc:
        return None, str(exc)
    pattern = re.compile(rf"^\s*(#\s*)?(export\s+)?{re.escape(variable)}\s*=(.*)$", re.MULTILINE)
    found = sorted(pattern.finditer(text), key=lambda match: match.group(1) is not None)
    if not found:
        return None, f".env.example does not list {variable}"
    raw = found[0].group(3).strip()
    if raw[:1] in ("'", '"') and raw[0] in raw[1:]:
        value = raw[1:raw.index(raw[0], 1)]
    else:
        value = _ENV_COMMENT.sub("", raw).strip()
    return value, f".env.example suggests {variable}={value!r}"
