#!/usr/bin/env python3
"""Checks conan/conanfile.py without Conan (which is not installed here): the recipe imports
against a stub `conan` module, its version is the project's, and the components its
package_info() declares with default options match, target for target and library for library,
what `cmake --install <build> --component development` puts into a temporary prefix.

ctest: unit.conan_recipe. Exit 0 = consistent; 1 = a mismatch, printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any, Dict, List


# ---- a stub of the parts of the conan package the recipe touches --------------------------------
class _Options:
    def __init__(self, values: Dict[str, Any]) -> None:
        self.__dict__.update(values)


class _Settings:
    os = "Linux"
    build_type = "Release"


class _Component:
    def __init__(self) -> None:
        self.libs: List[str] = []
        self.requires: List[str] = []
        self.system_libs: List[str] = []
        self.properties: Dict[str, Any] = {}

    def set_property(self, name: str, value: Any) -> None:
        self.properties[name] = value


class _Components(dict):
    """cpp_info.components: an entry springs into being on first use, as in Conan."""

    def __missing__(self, key: str) -> _Component:
        self[key] = _Component()
        return self[key]


class _CppInfo(_Component):
    def __init__(self) -> None:
        super().__init__()
        self.components = _Components()


class _Env:
    def prepend_path(self, *args: Any) -> None:
        pass


def install_conan_stub() -> None:
    conan = types.ModuleType("conan")
    tools = types.ModuleType("conan.tools")
    cmake = types.ModuleType("conan.tools.cmake")
    files = types.ModuleType("conan.tools.files")

    class ConanFile:
        pass

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("not available in the recipe check")

    conan.ConanFile = ConanFile  # type: ignore[attr-defined]
    for name in ("CMake", "CMakeDeps", "CMakeToolchain", "cmake_layout"):
        setattr(cmake, name, unavailable)
    files.copy = unavailable  # type: ignore[attr-defined]
    files.load = lambda conanfile, path: Path(path).read_text()  # type: ignore[attr-defined]
    sys.modules.update({"conan": conan, "conan.tools": tools, "conan.tools.cmake": cmake, "conan.tools.files": files})


def load_recipe(path: Path) -> Any:
    install_conan_stub()
    spec = importlib.util.spec_from_file_location("kasm_conanfile", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recipe = module.KasmConan()
    recipe.recipe_folder = str(path.parent)
    recipe.options = _Options(dict(module.KasmConan.default_options))
    recipe.settings = _Settings()
    recipe.cpp_info = _CppInfo()
    recipe.runenv_info = _Env()
    recipe.package_folder = "/package"
    return recipe


# ---- what cmake --install produces ---------------------------------------------------------------
def installed(build_dir: Path, prefix: Path) -> tuple[set[str], set[str]]:
    subprocess.run(
        ["cmake", "--install", str(build_dir), "--prefix", str(prefix), "--component", "development"],
        check=True, stdout=subprocess.DEVNULL,
    )
    targets: set[str] = set()
    for f in (prefix / "lib" / "cmake" / "kasm").glob("*-targets.cmake"):
        targets |= set(re.findall(r"add_library\((kasm::\w+) \w+ IMPORTED\)", f.read_text()))
    libs = {re.sub(r"^lib|\.(a|so.*)$", "", p.name) for p in (prefix / "lib").glob("libkasm*") if p.is_file()}
    return targets, libs


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--build-dir", required=True, type=Path)
    p.add_argument("--recipe", required=True, type=Path)
    args = p.parse_args()

    problems: List[str] = []
    recipe = load_recipe(args.recipe)
    recipe.set_version()
    version = (args.recipe.parent.parent / "VERSION").read_text().strip()
    if recipe.version != version:
        problems.append(f"recipe version {recipe.version} != VERSION {version}")
    recipe.package_info()
    declared = {c.properties.get("cmake_target_name"): c.libs for c in recipe.cpp_info.components.values()}
    if recipe.cpp_info.properties.get("cmake_file_name") != "kasm":
        problems.append("cmake_file_name is not 'kasm'")

    with tempfile.TemporaryDirectory(prefix="kasm-conan-check-") as tmp:
        targets, libs = installed(args.build_dir, Path(tmp))
    print(f"installed targets: {sorted(targets)}")
    print(f"installed libs:    {sorted(libs)}")
    print(f"recipe components: {declared}")

    if set(declared) != targets:
        problems.append(f"targets differ: recipe-only {sorted(set(declared) - targets)}, "
                        f"install-only {sorted(targets - set(declared))}")
    recipe_libs = {lib for ls in declared.values() for lib in ls}
    if recipe_libs != libs:
        problems.append(f"libraries differ: recipe-only {sorted(recipe_libs - libs)}, install-only {sorted(libs - recipe_libs)}")
    for target, ls in declared.items():
        expected = "kasm" if target == "kasm::kasm" else "kasm_" + target.split("::")[1]
        if ls != [expected]:
            problems.append(f"{target} should link [{expected}], recipe says {ls}")

    for problem in problems:
        print("MISMATCH:", problem)
    print("check_recipe: " + ("FAILED" if problems else "OK"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
