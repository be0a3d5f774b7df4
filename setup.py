"""Only the optional C modules live here (the AMI framing loop, the huge-page arenas); the rest is in pyproject.toml.

``optional=True``: without a C compiler the build still succeeds and callbridge runs on its pure-Python
framing (slower, same results; see callbridge/ami/fast/__init__.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("callbridge.ami.fast._fastframe", ["callbridge/ami/fast/_fastframe.c"], optional=True),
    # pymalloc arenas on transparent huge pages (callbridge/hugepages.py); Linux only, optional like the other
    Extension("callbridge._hugearenas", ["callbridge/_hugearenas.c"], optional=True),
])
