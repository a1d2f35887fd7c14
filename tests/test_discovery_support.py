"""The test-support kit itself: the overlay filter and generated projects (fast, no wheels)."""

from __future__ import annotations

from pathlib import Path

from support import PackageSpec, make_overlay, plugin_spec, sibling_spec, write_dist_info, write_project


def test_overlay_hides_shipmates_and_every_distribution_with_shipmates_entry_points(tmp_path: Path) -> None:
    source = tmp_path / "site-packages"
    write_dist_info(sibling_spec("alpha"), source)
    write_dist_info(plugin_spec("hooky", ""), source)
    write_dist_info(PackageSpec("shipmates", "shipmates"), source)
    write_dist_info(
        PackageSpec("pydantic-ish", "pydanticish", entry_points={"console_scripts": {"x": "y:z"}}), source
    )
    (source / "_editable.pth").write_text("/somewhere\n")
    (source / "six.py").write_text("")
    overlay = make_overlay(tmp_path / "overlay", source)
    assert sorted(p.name for p in overlay.iterdir()) == [
        "pydantic_ish-0.1.0.dist-info",
        "pydanticish",
        "six.py",
    ]
    assert (overlay / "six.py").is_symlink()


def test_generated_project_has_the_entry_point_and_a_module(tmp_path: Path) -> None:
    project = write_project(sibling_spec("bad name!", module="m_bad", version="2.0"), tmp_path)
    assert project.name == "shipmates-bad-name-2.0"
    pyproject = (project / "pyproject.toml").read_text()
    assert '[project.entry-points."shipmates.agents"]\n"bad name!" = "m_bad:build_agent"' in pyproject
    assert "class Sibling" in (project / "src" / "m_bad" / "__init__.py").read_text()
