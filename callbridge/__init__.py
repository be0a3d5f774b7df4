"""callbridge: links government hotlines beside an Asterisk PBX."""

__version__ = "0.1.0"
