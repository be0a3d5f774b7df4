"""Only the optional C inner loop of AMI framing lives here; everything else is in pyproject.toml.

``optional=True``: without a C compiler the build still succeeds and callbridge runs on its pure-Python
framing (slower, same results; see callbridge/ami/fast/__init__.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("callbridge.ami.fast._fastframe", ["callbridge/ami/fast/_fastframe.c"], optional=True)])
