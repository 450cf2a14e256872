"""Map the top-level `operator/` and `router/` folders into the `modelplane` namespace.

`operator` is a stdlib module name, so the folders cannot be import packages of their own;
pyproject.toml cannot express a prefixed package search, hence this file.
"""

from setuptools import Extension, find_packages, setup

MAPPED_FOLDERS = ("operator", "router")

packages = find_packages(include=["modelplane", "modelplane.*"])
for folder in MAPPED_FOLDERS:
    packages.append(f"modelplane.{folder}")
    packages += [f"modelplane.{name}" for name in find_packages(include=[f"{folder}.*"])]

# The PII scanner runs on every prompt; its C build is several times faster than pii.py, which
# stays as the reference and the fallback where no compiler is available (hence optional).
PII_SCANNER_SOURCES = ("module.c", "numeric.c", "text.c")
pii_scanner = Extension(
    "modelplane.router.policy._piiscan",
    sources=[f"router/policy/piiscan/{name}" for name in PII_SCANNER_SOURCES],
    depends=["router/policy/piiscan/piiscan.h"],
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    optional=True,
)

setup(
    packages=packages,
    package_dir={"modelplane": "modelplane", **{f"modelplane.{f}": f for f in MAPPED_FOLDERS}},
    ext_modules=[pii_scanner],
)
