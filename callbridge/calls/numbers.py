"""Phone numbers compared like with like: one normal form for the same subscriber however the PBX wrote it.

Trunks deliver the same caller as ``+8613800138000``, ``008613800138000``, ``013800138000`` or
``13800138000``, and dialplans rewrite caller IDs mid-call. The tracker reports every number in the
national form of the numbering plan (the default is China's: country code 86, international prefix
00, trunk prefix 0 — docs/events.md, "Caller numbers"):

* ``+CC…`` / ``00CC…`` (own country) → the national number: a mobile number (``1`` + 10 digits) as it is,
  a landline with its trunk prefix (``+86 10 1234 5678`` → ``01012345678``);
* ``0`` + a mobile number (a trunk prefix some carriers add) → the mobile number;
* ``+`` + another country → the international prefix (``+14155550100`` → ``0014155550100``);
* spaces, dashes, dots and brackets are dropped; anything else (extensions ``1001``, hotlines ``12345``,
  anonymous ``""``) is left as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

_SEPARATORS = str.maketrans("", "", " -.()")


@dataclass(frozen=True, slots=True)
class NumberPlan:
    country_code: str = "86"
    international_prefix: str = "00"
    trunk_prefix: str = "0"
    mobile_lead: str = "1"  # national mobile numbers: this digit, then ...
    mobile_length: int = 11  # ... this many digits in all

    def _is_mobile(self, national: str) -> bool:
        return len(national) == self.mobile_length and national.startswith(self.mobile_lead) and national.isdigit()

    def normalise(self, number: str) -> str:
        """The normal form of ``number`` (see the module doc); never raises."""
        raw = number.strip()
        compact = raw.translate(_SEPARATORS)
        if not compact or not compact.lstrip("+").isdigit():
            return raw  # anonymous, a SIP URI, a name: nothing to normalise
        international = ""
        if compact.startswith("+"):
            international = compact[1:]
        elif compact.startswith(self.international_prefix):
            international = compact[len(self.international_prefix) :]
        if international:
            if not international.startswith(self.country_code):
                return self.international_prefix + international
            national = international[len(self.country_code) :]
            return national if self._is_mobile(national) else self.trunk_prefix + national.removeprefix(
                self.trunk_prefix)  # fmt: skip
        if compact.startswith(self.trunk_prefix) and self._is_mobile(compact[len(self.trunk_prefix) :]):
            return compact[len(self.trunk_prefix) :]
        return compact


CHINA = NumberPlan()
