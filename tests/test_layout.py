"""The web UI's layout (app/web/): one blueprint package per feature, and shared modules beside them.
No blueprint package imports another, no shared module imports a blueprint package, and every page's
URL leads in one hop to its code: its endpoint is `<folder>.<view>` and the view lives in that folder."""
import ast

import pytest

from app import create_app
from app.config import ROOT, TestConfig

WEB = ROOT / "app" / "web"
BLUEPRINTS = sorted(p.name for p in WEB.iterdir() if (p / "__init__.py").is_file())
SHARED = sorted(p for p in WEB.glob("*.py") if p.name != "__init__.py")


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path) -> set[str]:
    """Every module `path` imports, relative imports resolved; `from X import name` counts X.name too,
    since the name may be a submodule (`from app.web import tasks`)."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            source = ".".join(base + ([node.module] if node.module else []))
            out.add(source)
            out.update(f"{source}.{alias.name}" for alias in node.names)
    return out


def blueprints_in(modules) -> set[str]:
    """The blueprint packages (their folder names) among the imported modules."""
    return {m.split(".")[2] for m in modules
            if m.startswith("app.web.") and m.split(".")[2] in BLUEPRINTS}


def test_the_features_are_blueprint_packages():
    assert {"auth", "tasks", "complaints", "procedure"} <= set(BLUEPRINTS)


@pytest.mark.parametrize("name", BLUEPRINTS)
def test_a_blueprint_package_imports_no_other(name):
    for path in sorted((WEB / name).rglob("*.py")):
        others = blueprints_in(imported(path)) - {name}
        assert not others, f"{path.relative_to(ROOT)} imports the blueprint package(s) {sorted(others)}"


@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.name)
def test_a_shared_module_imports_no_blueprint(path):
    found = blueprints_in(imported(path))
    assert not found, f"{path.relative_to(ROOT)} imports the blueprint package(s) {sorted(found)}"


def test_the_import_check_sees_relative_and_absolute_imports():
    module = WEB / "tasks" / "routes.py"
    found = imported(module)
    assert "app.web.common" in found and "app.web.tasks" in found and "app.models" in found
    assert blueprints_in({"app.web.complaints.routes", "app.web.ui", "app.webx"}) == {"complaints"}


def test_every_page_url_leads_to_its_blueprint_folder():
    app = create_app(TestConfig)
    pages = [rule for rule in app.url_map.iter_rules()
             if app.view_functions[rule.endpoint].__module__.startswith("app.web.")]
    assert pages, "no web UI routes found"
    for rule in pages:
        blueprint, _, view = rule.endpoint.partition(".")
        module = app.view_functions[rule.endpoint].__module__
        assert blueprint in BLUEPRINTS and view, f"{rule.rule}: endpoint {rule.endpoint} is not <folder>.<view>"
        assert module.startswith(f"app.web.{blueprint}."), f"{rule.rule}: {rule.endpoint} is defined in {module}"
    outside = sorted(rule.rule for rule in app.url_map.iter_rules()
                     if "." not in rule.endpoint and rule.endpoint != "static")
    assert outside == [], f"routes outside any blueprint: {outside}"
