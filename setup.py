"""Map the top-level `operator/` and `router/` folders into the `modelplane` namespace.

`operator` is a stdlib module name, so the folders cannot be import packages of their own;
pyproject.toml cannot express a prefixed package search, hence this file.
"""

from setuptools import find_packages, setup

MAPPED_FOLDERS = ("operator", "router")

packages = find_packages(include=["modelplane", "modelplane.*"])
for folder in MAPPED_FOLDERS:
    packages.append(f"modelplane.{folder}")
    packages += [f"modelplane.{name}" for name in find_packages(include=[f"{folder}.*"])]

setup(
    packages=packages,
    package_dir={"modelplane": "modelplane", **{f"modelplane.{f}": f for f in MAPPED_FOLDERS}},
)
