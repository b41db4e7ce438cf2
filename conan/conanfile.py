"""Conan 2 recipe of kasm: the library and its optional components, packaged from the project's
own CMake build and install rules, exposing the same targets as find_package(kasm).

    conan create conan/ --build=missing -o "kasm/*:postgres=False"

Consumers use find_package(kasm) and link kasm::kasm, kasm::sqlite, kasm::postgres, kasm::redis,
kasm::docker or kasm::net. conan/check_recipe.py (ctest unit.conan_recipe) keeps COMPONENTS in step with what
`cmake --install --component development` produces.
"""

import os

from conan import ConanFile
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load

# component -> (option enabling it or None, CMake target, library file name, requires)
COMPONENTS = {
    "core": (None, "kasm::kasm", "kasm", ["boost::json", "openssl::crypto"]),
    "sqlite": ("sqlite", "kasm::sqlite", "kasm_sqlite", ["core", "sqlite3::sqlite3"]),
    "postgres": ("postgres", "kasm::postgres", "kasm_postgres", ["core", "libpqxx::pqxx"]),
    "docker": ("docker", "kasm::docker", "kasm_docker", ["core", "libcurl::libcurl", "boost::json"]),
    "net": ("net", "kasm::net", "kasm_net", ["core", "boost::headers", "openssl::ssl", "openssl::crypto"]),
    # The share database on Redis: hiredis for RESP only, OpenSSL for rediss://.
    "redis": ("redis", "kasm::redis", "kasm_redis",
              ["core", "hiredis::hiredis", "boost::json", "openssl::ssl", "openssl::crypto"]),
    # The "ssh" desktop gateway backend (the web terminal's SSH client).
    "ssh": ("ssh", "kasm::ssh", "kasm_ssh", ["core", "libssh::libssh", "boost::json"]),
    # The "aws-ec2" VM provider for autoscaling (EC2 Query API, Signature V4).
    "aws": ("aws", "kasm::aws", "kasm_aws", ["core", "libcurl::libcurl", "openssl::crypto", "boost::json"]),
}

# Where the python option installs the `kasm` package, relative to the package folder.
PYTHON_SITE = "lib/python3/site-packages"


class KasmConan(ConanFile):
    name = "kasm"
    description = "Embeddable container workspace streaming: scheduler, sessions, agents, proxy"
    topics = ("containers", "vdi", "scheduler", "docker")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "shared": [True, False],
        "fPIC": [True, False],
        "sqlite": [True, False],
        "postgres": [True, False],
        "redis": [True, False],
        "docker": [True, False],
        "net": [True, False],
        "ssh": [True, False],
        "aws": [True, False],
        "python": [True, False],
    }
    default_options = {
        "shared": False,
        "fPIC": True,
        "sqlite": True,
        "postgres": True,
        "redis": True,
        "docker": True,
        "net": True,
        "ssh": True,
        "aws": True,
        "python": False,
    }
    exports_sources = (
        "VERSION", "CMakeLists.txt", "cmake/*", "include/*", "src/*", "bindings/*", "examples/*",
        "reference-server/*", "tools/*",
    )

    def set_version(self):
        self.version = load(self, os.path.join(self.recipe_folder, "..", "VERSION")).strip()

    def export_sources(self):
        # The recipe lives in conan/; the sources are the repository around it.
        root = os.path.join(self.recipe_folder, "..")
        for pattern in self.exports_sources:
            copy(self, pattern, root, self.export_sources_folder)

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        self.requires("boost/[>=1.81]")
        self.requires("openssl/[>=3]")
        if self.options.sqlite:
            self.requires("sqlite3/[>=3.40]")
        if self.options.postgres:
            self.requires("libpqxx/[>=7]")
        if self.options.redis:
            self.requires("hiredis/[>=1]")
        if self.options.docker or self.options.aws:
            self.requires("libcurl/[>=7.80]")
        if self.options.ssh:
            self.requires("libssh/[>=0.10]")
        if self.options.python:
            self.requires("pybind11/[>=2.10]")

    def generate(self):
        tc = CMakeToolchain(self)
        tc.variables["KASM_BUILD_TESTS"] = False
        tc.variables["KASM_BUILD_BENCHMARKS"] = False
        for option in ("sqlite", "postgres", "redis", "docker", "net", "ssh", "aws", "python"):
            tc.variables["KASM_WITH_" + option.upper()] = bool(getattr(self.options, option))
        # The RDP gateway backend needs FreeRDP 2, which Conan Center does not carry: it is built
        # from a system FreeRDP by the project's own build, not by this package.
        tc.variables["KASM_WITH_RDP"] = False
        tc.variables["KASM_PYTHON_INSTALL_DIR"] = PYTHON_SITE
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        cmake = CMake(self)
        cmake.install(component="development")
        if self.options.python:
            cmake.install(component="python")

    def package_info(self):
        # find_package(kasm) and the kasm:: targets, whatever generator the consumer uses.
        self.cpp_info.set_property("cmake_file_name", "kasm")
        self.cpp_info.set_property("cmake_target_name", "kasm::kasm_all")
        for component, (option, target, lib, requires) in COMPONENTS.items():
            if option is not None and not getattr(self.options, option):
                continue
            c = self.cpp_info.components[component]
            c.set_property("cmake_target_name", target)
            c.libs = [lib]
            c.requires = list(requires)
            if self.settings.os in ("Linux", "FreeBSD"):
                c.system_libs = ["pthread"]
        if self.options.python:
            self.runenv_info.prepend_path("PYTHONPATH", os.path.join(self.package_folder, PYTHON_SITE))
