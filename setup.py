# All metadata is in pyproject.toml; this file remains for tools that still call setup.py.
from setuptools import setup

setup()
