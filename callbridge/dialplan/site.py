"""The site file of ``callbridge render-asterisk``: what the dialplan cannot know about one PBX.

The dialplan says *which* endpoints exist (trunk lines ``PJSIP/110@hotline-110``, queue members
``PJSIP/agent1001`` and ``Local/2101@sim``); the site file says *where* they are: the transport every
endpoint uses, the carrier's source addresses (PJSIP ``identify``, without which inbound calls never
reach ``cb-inbound``), each trunk endpoint's contact, the agents' phones (rendered, or an ``#include`` of
the site's own file), what each ``Local/<n>@<context>`` member dials, and where the shipped prompts are.
Documented field by field in ``config/asterisk-site.yaml``. Pure: models and a loader, no rendering.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callbridge.dialplan.model import NAME_PATTERN
from callbridge.dialplan.yamlsource import parse_yaml, read_text, validation_problems
from callbridge.errors import ConfigError, Problem

#: ``host`` or ``host:port`` (IPv4 or a DNS name); nothing that could end an Asterisk config line.
_HOSTPORT = r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}(:[0-9]{1,5})?$"
#: ``sip:[user@]host[:port]`` — the contact of an aor.
_CONTACT = r"^sips?:([A-Za-z0-9_.+-]{1,64}@)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}(:[0-9]{1,5})?$"
#: an address or network for ``identify match`` (``203.0.113.10``, ``203.0.113.0/24``).
_MATCH = r"^[0-9A-Fa-f.:]{2,45}(/[0-9]{1,3})?$"
#: what a Local seat context dials: a dial string where ``${EXTEN}`` is the seat number.
_SEAT_DIAL = r"^(PJSIP|SIP|IAX2|DAHDI)/[A-Za-z0-9_.@+*#/${}-]+$"
#: an absolute directory without spaces or config metacharacters.
_DIR = r"^/[A-Za-z0-9_./-]+$"
_FILE = r"^[A-Za-z0-9_./-]+\.conf$"

SiteName = Annotated[str, Field(pattern=NAME_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Transport(_Model):
    name: SiteName = Field(default="cb-transport-udp", description="the PJSIP transport every callbridge endpoint uses")
    bind: Annotated[str, Field(pattern=_HOSTPORT)] | None = Field(
        default=None, description="render the transport section with this bind address; omit to use the site's own"
    )
    protocol: str = Field(default="udp", pattern=r"^(udp|tcp|tls)$")
    external_address: Annotated[str, Field(pattern=_HOSTPORT)] | None = Field(
        default=None, description="external_signaling_address / external_media_address (behind NAT)"
    )


class Carrier(_Model):
    endpoint: SiteName = Field(default="carrier", description="endpoint of the inbound trunk line (PJSIP/carrier)")
    match: tuple[Annotated[str, Field(pattern=_MATCH)], ...] = Field(
        min_length=1, description="source addresses of the carrier (PJSIP identify)"
    )
    contact: Annotated[str, Field(pattern=_CONTACT)] | None = None


class Contact(_Model):
    contact: Annotated[str, Field(pattern=_CONTACT)]
    qualify_frequency: int = Field(default=0, ge=0, le=3600, description="seconds between OPTIONS; 0 = never")


class Trunks(_Model):
    default_host: Annotated[str, Field(pattern=_HOSTPORT)] | None = Field(
        default=None, description="contact sip:<number>@<default_host> of every trunk endpoint not listed"
    )
    endpoints: dict[SiteName, Contact] = Field(default_factory=dict)


class Agent(_Model):
    contact: Annotated[str, Field(pattern=_CONTACT)] | None = None
    callerid: str = Field(default="", pattern=r"^[A-Za-z0-9 _.<>-]{0,80}$")


class Agents(_Model):
    include: Annotated[str, Field(pattern=_FILE)] | None = Field(
        default=None, description="the site's own file that defines the agents' endpoints (#include)"
    )
    default_host: Annotated[str, Field(pattern=_HOSTPORT)] | None = Field(
        default=None, description="contact sip:<endpoint>@<default_host> of every agent not listed"
    )
    endpoints: dict[SiteName, Agent] = Field(default_factory=dict)
    context: SiteName = Field(default="cb-agents", description="context of the agents' own calls")


class Site(_Model):
    version: int = Field(default=1, ge=1, le=1)
    transport: Transport = Transport()
    carrier: Carrier
    trunks: Trunks = Trunks()
    agents: Agents = Agents()
    local_seats: dict[SiteName, Annotated[str, Field(pattern=_SEAT_DIAL)]] = Field(
        default_factory=dict, description="Local/<n>@<context> queue members: context → what it dials"
    )
    prompts_dir: Annotated[str, Field(pattern=_DIR)] = Field(
        "/var/lib/asterisk/sounds/callbridge", description="where the shipped prompts are installed"
    )
    moh_class: SiteName = Field(default="callbridge", description="music-on-hold class rendered for callbridge's calls")


def parse_site_text(text: str, filename: str = "<site>") -> Site:
    doc, problems = parse_yaml(text, filename)
    if doc is None or problems:
        raise ConfigError(problems or [Problem(filename, 0, 0, "(yaml)", "invalid YAML")])
    try:
        return Site.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc, Site)) from exc


def load_site(path: Path) -> Site:
    """Read and validate a site file. Raises ``ConfigError`` / ``UnreadableConfigError``."""
    return parse_site_text(read_text(Path(path)), str(path))
