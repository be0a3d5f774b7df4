"""Simulator configuration (YAML → pydantic), with the lab-compatible built-in dialplan.

Secrets never live in the file: an AMI user names the environment variable holding its secret
(``secret_env``, default ``CALLBRIDGE_SIM_SECRET``); tests may pass ``secret`` directly in code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from ruamel.yaml import YAML

from callbridge.errors import ConfigError, Problem
from callbridge.sim.endpoints import Behaviour, Endpoint

BehaviourName = Literal["answer", "busy", "noanswer", "dnd", "down", "unreachable", "congestion"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserConfig(_Model):
    name: str = "callbridge"
    secret: str | None = None
    secret_env: str = "CALLBRIDGE_SIM_SECRET"  # noqa: S105 - the name of the variable, not a secret
    read: list[str] = Field(default_factory=lambda: ["all"])
    write: list[str] = Field(default_factory=lambda: ["all"])

    def resolve_secret(self) -> str:
        if self.secret is not None:
            return self.secret
        value = os.environ.get(self.secret_env)
        if not value:
            raise ConfigError([Problem("<sim config>", 0, 0, f"ami.users.{self.name}",
                                       f"no secret: set the environment variable {self.secret_env}")])
        return value


class AmiConfig(_Model):
    users: list[UserConfig] = Field(default_factory=lambda: [UserConfig()])
    login_fail_delay: float = 1.0


class BehaviourConfig(_Model):
    behaviour: BehaviourName = "answer"
    ring_after: float = 0.05
    answer_after: float = 0.5
    hangup_after: float | None = None
    timer_b: float = 32.0

    def to_behaviour(self) -> Behaviour:
        return Behaviour(self.behaviour, self.ring_after, self.answer_after, self.hangup_after, self.timer_b)


class AgentConfig(BehaviourConfig):
    name: str  # PJSIP endpoint, e.g. agent1001
    number: str = ""
    display: str = ""
    context: str = "from-agents"


class TrunkConfig(BehaviourConfig):
    name: str  # PJSIP endpoint, e.g. hotline-12345
    number: str = ""
    capacity: int = 0
    context: str = "from-trunk"


class QueueConfig(_Model):
    name: str
    strategy: Literal["ringall", "linear", "rrmemory", "leastrecent"] = "ringall"
    timeout: float = 15.0
    retry: float = 2.0
    members: list[str] = Field(default_factory=list)  # interfaces, e.g. PJSIP/agent1001


class HotlineTraffic(_Model):
    did: str
    calls_per_minute: float = 6.0
    mean_holding: float = 120.0
    emergency_share: float = 0.0
    abandon_after: float | None = None


class TrafficConfig(_Model):
    seed: int = 1
    hotlines: list[HotlineTraffic] = Field(default_factory=list)
    nuisance_numbers: list[str] = Field(default_factory=list)
    nuisance_share: float = 0.0
    surge_factor: float = 1.0


class SimConfig(_Model):
    ami: AmiConfig = Field(default_factory=AmiConfig)
    time_scale: float = 1.0
    dialplan: str | None = None  # path to extensions.conf; None = the built-in lab dialplan
    carrier: str = "anonymous"  # endpoint inbound calls (place_call) arrive from
    inbound_context: str = "from-trunk"
    counters: dict[str, int] = Field(default_factory=dict)
    agents: list[AgentConfig] = Field(default_factory=list)
    trunks: list[TrunkConfig] = Field(default_factory=list)
    queues: list[QueueConfig] = Field(default_factory=list)
    traffic: TrafficConfig | None = None
    base_dir: str = "."

    def endpoints(self) -> list[Endpoint]:
        out = [Endpoint(a.name, "agent", a.number or a.name.removeprefix("agent"),
                        a.display or f"Agent {a.number or a.name.removeprefix('agent')}", a.context,
                        a.to_behaviour()) for a in self.agents]
        out += [Endpoint(t.name, "trunk", t.number or t.name.removeprefix("hotline-"), "", t.context,
                         t.to_behaviour(), t.capacity) for t in self.trunks]
        out.append(Endpoint(self.carrier, "phone", "", "", self.inbound_context))
        return out

    def dialplan_text(self) -> str:
        if self.dialplan is None:
            return LAB_DIALPLAN
        path = Path(self.dialplan)
        if not path.is_absolute():
            path = Path(self.base_dir) / path
        return path.read_text(encoding="utf-8")


def load_config(path: str | Path) -> SimConfig:
    file = Path(path)
    try:
        data = YAML(typ="safe").load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError([Problem(str(file), 0, 0, "", f"cannot read: {exc}")]) from exc
    data.setdefault("base_dir", str(file.parent))
    try:
        return SimConfig.model_validate(data)
    except ValueError as exc:
        raise ConfigError([Problem(str(file), 0, 0, "", str(exc))]) from exc


def lab_config(**overrides: object) -> SimConfig:
    """The lab of ``tests/fixtures/asterisk-lab``: agents 1001-1003, hotline trunks, queues support/hotline."""
    base: dict[str, object] = {
        "agents": [{"name": f"agent{n}", "number": str(n), "display": f"Agent {n}"} for n in (1001, 1002, 1003)],
        "trunks": [{"name": f"hotline-{n}", "number": str(n)} for n in ("12345", "110", "119", "120", "122")]
        + [{"name": "hotline-12399", "number": "12399", "behaviour": "down"}],
        "queues": [{"name": "support", "strategy": "linear"}, {"name": "hotline", "strategy": "ringall"}],
    }
    base.update(overrides)
    return SimConfig.model_validate(base)


# The lab's extensions.conf (tests/fixtures/asterisk-lab/etc/extensions.conf) minus Echo-only extras.
LAB_DIALPLAN = r"""
[globals]
HOTLINE_TIMEOUT=30

[sim]
exten => _X.,1,NoOp(sim phone ${EXTEN} answering)
 same => n,Answer()
 same => n,Wait(600)
 same => n,Hangup()
exten => _[a-z].,1,NoOp(sim phone ${EXTEN} answering)
 same => n,Answer()
 same => n,Wait(600)
 same => n,Hangup()
exten => _[n]oanswer-.,1,NoOp(sim phone ${EXTEN} ringing forever)
 same => n,Ringing()
 same => n,Wait(600)
exten => _moh-.,1,Answer()
 same => n,MusicOnHold(default,600)

[internal]
exten => _100X,1,NoOp(dial SIP agent ${EXTEN})
 same => n,Dial(PJSIP/agent${EXTEN},30,tT)
 same => n,Hangup()
exten => _2XXX,1,NoOp(dial local agent ${EXTEN})
 same => n,Dial(Local/${EXTEN}@sim,30,tT)
 same => n,Hangup()
exten => 12345,1,Goto(trunk,${EXTEN},1)
exten => 110,1,Goto(trunk,${EXTEN},1)
exten => 119,1,Goto(trunk,${EXTEN},1)
exten => 120,1,Goto(trunk,${EXTEN},1)
exten => 122,1,Goto(trunk,${EXTEN},1)
exten => 12399,1,Goto(trunk,${EXTEN},1)
exten => _co[n]f-.,1,NoOp(join conference ${EXTEN:5})
 same => n,Answer()
 same => n,ConfBridge(${EXTEN:5},lab_bridge,lab_user)
 same => n,Hangup()
exten => _queue-.,1,NoOp(enter queue ${EXTEN:6} prio=${QUEUE_PRIO})
 same => n,Answer()
 same => n,Queue(${EXTEN:6},tT,,,600)
 same => n,NoOp(left queue ${EXTEN:6}: QUEUESTATUS=${QUEUESTATUS} QUEUE_WITHDRAW_INFO=${QUEUE_WITHDRAW_INFO})
 same => n,GotoIf($["${QUEUESTATUS}" = "WITHDRAW" & "${QUEUE_WITHDRAW_INFO}" != ""]?${QUEUE_WITHDRAW_INFO},1)
 same => n,Hangup()
exten => _qprio-.,1,Set(QUEUE_PRIO=10)
 same => n,Goto(queue-${EXTEN:6},1)
exten => hold,1,Answer()
 same => n,Wait(600)
exten => moh,1,Answer()
 same => n,MusicOnHold(default,600)

[trunk]
exten => _X.,1,NoOp(out via hotline-${EXTEN} CID=${CALLERID(all)} CONNECTED=${CONNECTEDLINE(all)})
 same => n,Dial(PJSIP/${EXTEN}@hotline-${EXTEN},${HOTLINE_TIMEOUT})
 same => n,NoOp(hotline ${EXTEN} result: DIALSTATUS=${DIALSTATUS} HANGUPCAUSE=${HANGUPCAUSE})
 same => n,Hangup()

[from-agents]
include => internal

[from-trunk]
exten => 4008000300,1,NoOp(inbound from ${CALLERID(num)} to queue support)
 same => n,Goto(internal,queue-support,1)
exten => _X.,1,NoOp(inbound from ${CALLERID(num)} to ${EXTEN})
 same => n,Goto(internal,1001,1)
exten => s,1,Goto(internal,1001,1)
"""
