"""The search page's ES modules (static/js/) read as source, without a browser: they form an acyclic graph from
main.js with nothing unused, each says what it owns, and every id, template and string they ask for exists.
(tests/test_browser.py drives the same code in Chromium.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
JS = REPO / "static" / "js"
INDEX = REPO / "templates" / "index.html"

IMPORT = re.compile(r'^import \{([^}]*)\} from "\./([\w-]+\.js)";$', re.MULTILINE)
EXPORT = re.compile(r"^export (?:async function|function|const|class) (\w+)", re.MULTILINE)
HEADER = re.compile(r"/\* [A-Z].{10,} \*/")


def modules() -> dict[str, str]:
    """Module file name → source."""
    found = {path.name: path.read_text(encoding="utf-8") for path in sorted(JS.glob("*.js"))}
    assert "main.js" in found, f"no entry point in {JS}"
    return found


def imports_of(source: str) -> dict[str, set[str]]:
    """Imported module → the names imported from it."""
    return {module: {name.strip() for name in names.split(",")} for names, module in IMPORT.findall(source)}


def test_the_page_loads_main_js_as_a_module():
    html = INDEX.read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*>", html) == ["""<script type="module" src="{{ asset('js/main.js') }}">"""], (
        "one module script, main.js; it imports the rest"
    )


def test_modules_form_an_acyclic_graph_from_main_with_nothing_unused():
    sources = modules()
    graph = {name: imports_of(source) for name, source in sources.items()}
    for name, source in sources.items():
        every_import = re.findall(r"^import .*$", source, re.MULTILINE)
        assert len(every_import) == len(graph[name]), f"{name}: an import not of the form import {{…}} from './x.js'"
        for target, names in graph[name].items():
            assert target in sources, f"{name} imports {target}, which does not exist"
            exported = set(EXPORT.findall(sources[target]))
            assert names <= exported, f"{name} imports {names - exported} that {target} does not export"

    # Depth-first from main.js: every module is reached, and none is reached again while it is being visited.
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "open":
            pytest.fail("import cycle: " + " → ".join([*path, name]))
        if state.get(name) == "done":
            return
        state[name] = "open"
        for target in graph[name]:
            visit(target, [*path, name])
        state[name] = "done"

    visit("main.js", [])
    assert set(state) == set(sources), f"modules main.js never loads: {set(sources) - set(state)}"

    used = {(target, n) for imports in graph.values() for target, names in imports.items() for n in names}
    # Other pages' scripts (js/<page>/*.js, e.g. the duplicates page) use shared modules too.
    for path in JS.glob("*/*.js"):
        for names, target in re.findall(r'^import \{([^}]*)\} from "\.\./([\w-]+\.js)";', path.read_text(), re.M):
            used |= {(target, n.strip()) for n in names.split(",") if n.strip()}
    unused = {(name, n) for name, source in sources.items() for n in EXPORT.findall(source) if (name, n) not in used}
    assert unused == set(), f"exported but never imported: {sorted(unused)}"


def test_each_module_says_in_one_line_what_it_owns():
    for name, source in modules().items():
        first = source.splitlines()[0]
        assert HEADER.fullmatch(first), f"{name} must start with a one-line /* … */ saying what it owns: {first!r}"
        assert len(source.splitlines()) <= 300, f"{name} is too long: split it by feature"


def test_every_element_and_template_the_modules_ask_for_is_in_the_page():
    html = INDEX.read_text(encoding="utf-8")
    ids = set(re.findall(r'\sid="([\w-]+)"', html))
    templates = set(re.findall(r'<template id="([\w-]+)"', html))
    source = "\n".join(modules().values())
    wanted = set(re.findall(r'getElementById\("([\w-]+)"\)', source))
    wanted |= {match for match in re.findall(r'querySelector\("#([\w-]+)', source)}
    assert wanted and wanted <= ids, f"ids the modules look up that index.html lacks: {wanted - ids}"
    cloned = set(re.findall(r'fromTemplate\("([\w-]+)"\)', source))
    assert cloned == templates, f"templates cloned {cloned} vs templates in the page {templates}"


STRING_FILES = sorted(JS.glob("strings*.js"))  # the strings by feature (strings.js, strings-browse.js, …)


def string_keys(language: str) -> set[str]:
    """The keys of one language's tables in the strings*.js files (four-space indented `key:` or `"key with
    spaces":`); a key declared in two files is refused (one would silently win)."""
    keys: set[str] = set()
    for path in STRING_FILES:
        source = path.read_text(encoding="utf-8")
        table = re.search(rf"^  {language}: \{{\n(.*?)^  \}},$", source, re.MULTILINE | re.DOTALL)
        assert table, f"no {language} table in {path.name}"
        found = {key for _, key in re.findall(r'^    ("?)([\w ]+)\1:', table.group(1), re.MULTILINE)}
        assert not keys & found, f"{path.name} declares again: {keys & found}"
        keys |= found
    return keys


def test_both_languages_have_every_string_the_page_uses():
    english, chinese = string_keys("en"), string_keys("zh")
    assert len(english) > 100
    assert english == chinese, f"only in English: {english - chinese}; only in Chinese: {chinese - english}"
    html = INDEX.read_text(encoding="utf-8")
    used = set(re.findall(r'data-i18n(?:-[a-z-]+)?="(\w+)"', html))
    source = "\n".join(text for name, text in modules().items() if not name.startswith("strings"))
    used |= set(re.findall(r'\bt\("(\w+)"', source))
    assert len(used) > 50 and used <= english, f"strings used but not declared: {used - english}"
