"""The house rules a reader relies on, checked on the source itself.

The product's modules form a tree (no import loop, not even through an import
inside a function), no function is longer than about 50 lines of code, no
closure is nested more than two deep, and no test module imports another
test module (shared helpers live in helper modules).
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRODUCT_PACKAGES = ("keras_lstm_scratch", "training")
MAX_CODE_LINES = 50
MAX_CLOSURE_DEPTH = 2


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules():
    return {
        module_name(path): path
        for package in PRODUCT_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def imported_modules(path, known):
    """Every product module `path` imports, at any depth of its code."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            # `from package import module` names the module, not the package.
            names = [
                f"{node.module}.{alias.name}"
                if f"{node.module}.{alias.name}" in known
                else node.module
                for alias in node.names
            ]
        else:
            continue
        imported.update(name for name in names if name in known)
    # Importing a.b.c runs a/__init__ and a/b/__init__ first: those count,
    # but for the importing module's own packages, which run before it.
    own = set(ancestors(module_name(path)))
    packages = {p for name in imported for p in ancestors(name)}
    return imported | {p for p in packages - own if p in known}


def ancestors(name):
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def find_cycle(graph):
    """One import loop as a list of modules, or None (depth-first search)."""
    done, on_path = set(), []

    def visit(module):
        if module in on_path:
            return on_path[on_path.index(module) :] + [module]
        if module in done:
            return None
        on_path.append(module)
        for other in sorted(graph[module]):
            cycle = visit(other)
            if cycle:
                return cycle
        on_path.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def docstring_lines(tree):
    lines = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list) or not body:
            continue
        first = body[0]
        if isinstance(first, ast.Expr) and isinstance(
            first.value, ast.Constant
        ):
            if isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def code_lines(function, source_lines, docstrings):
    """Lines of `function`'s body that hold code (no signature, blank line,
    comment or docstring)."""
    return sum(
        1
        for number in range(function.body[0].lineno, function.end_lineno + 1)
        if number not in docstrings
        and source_lines[number - 1].strip()
        and not source_lines[number - 1].strip().startswith("#")
    )


def functions_with_depth(tree):
    """(function, closure depth) pairs; a method or top-level def is 0."""
    found = []

    def visit(node, depth):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((child, depth))
                visit(child, depth + 1)
            else:
                visit(child, depth)

    visit(tree, 0)
    return found


def test_the_product_modules_import_each_other_as_a_tree():
    modules = product_modules()
    graph = {
        name: imported_modules(path, modules) - {name}
        for name, path in modules.items()
    }
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_check_finds_a_loop():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_product_function_is_longer_than_fifty_lines_of_code():
    too_long = []
    for name, path in product_modules().items():
        source = path.read_text()
        tree = ast.parse(source)
        docstrings = docstring_lines(tree)
        for function, _ in functions_with_depth(tree):
            count = code_lines(function, source.splitlines(), docstrings)
            if count > MAX_CODE_LINES:
                too_long.append(f"{name}.{function.name}: {count} lines")
    assert not too_long, too_long


def test_no_closure_is_nested_more_than_two_deep():
    too_deep = [
        f"{name}.{function.name}: depth {depth}"
        for name, path in product_modules().items()
        for function, depth in functions_with_depth(ast.parse(path.read_text()))
        if depth > MAX_CLOSURE_DEPTH
    ]
    assert not too_deep, too_deep


def test_no_test_module_imports_another_test_module():
    offenders = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[-1].startswith("test_"):
                    offenders.append(f"{path.name}: {node.module}")
    assert not offenders, offenders
