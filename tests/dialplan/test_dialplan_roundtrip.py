"""Property: any valid dialplan model, written as YAML, loads back to an equal model."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from callbridge.dialplan import parse_dialplan_text
from callbridge.dialplan.model import (
    DialplanModel,
    ExpertPriority,
    ExpertSeats,
    Hotline,
    Mode,
    NuisancePolicy,
    NumberCarrying,
    Overflow,
    OverflowRecover,
    OverflowStart,
    Queue,
    TransferRule,
    Trunk,
)
from callbridge.errors import ConfigError

CODES = ["*1", "*3", "*4", "*5", "*6", "#3", "#4", "*70", "*81"]
CATEGORIES = ["police", "non_police", "emergency", "fire", "medical", "water"]
SAFE_CHAINS = [
    ("back_to_agent",),
    ("backup_line", "back_to_agent"),
    ("origin_queue",),
    ("back_to_agent", "origin_queue"),
]
ANY_CHAINS = [*SAFE_CHAINS, ("hangup",), ("backup_line", "hangup"), ()]
# text ops might type: Chinese, punctuation YAML cares about, quotes
label = st.text(alphabet="市民热线报警火警急救 abcXYZ019:#-'\"!&*[]{}|>%@`,", min_size=1, max_size=20).filter(
    lambda s: s.strip() == s
)
numbers = st.lists(st.from_regex(r"[1-9][0-9]{2,5}", fullmatch=True), min_size=1, max_size=4, unique=True)


@st.composite
def dialplans(draw: st.DrawFn) -> DialplanModel:
    nums = draw(numbers)
    cats = draw(st.lists(st.sampled_from(CATEGORIES), unique=True, max_size=4))
    categories = {c: draw(label) for c in cats}
    queues: dict[str, Queue] = {}
    trunks: dict[str, Trunk] = {}
    hotlines: dict[str, Hotline] = {}
    for n in nums:
        q = f"q-{n}"
        members = draw(
            st.lists(st.sampled_from(["PJSIP/agent1001", "Local/2001@sim", "PJSIP/a-b.c"]), unique=True, max_size=2)
        )
        queues[q] = Queue(
            name=q,
            strategy=draw(st.sampled_from(["ringall", "linear", "rrmemory"])),
            members=tuple(members),
            timeout=draw(st.integers(1, 600)),
        )
        expert = None
        if draw(st.booleans()):
            queues[f"qe-{n}"] = Queue(name=f"qe-{n}")
            prios = draw(
                st.lists(
                    st.builds(
                        ExpertPriority,
                        origin=st.none() | st.sampled_from(nums),
                        category=st.none() | st.sampled_from(cats) if cats else st.none(),
                        priority=st.integers(0, 100),
                    ),
                    max_size=3,
                )
            )
            expert = ExpertSeats(queue=f"qe-{n}", priorities=tuple(prios), default_priority=draw(st.integers(0, 100)))
        trunk = None
        if draw(st.booleans()):
            trunk = f"t-{n}"
            lines = tuple(f"PJSIP/{n}@trunk-{n}-{i}" for i in range(draw(st.integers(1, 3))))
            trunks[trunk] = Trunk(
                name=trunk,
                lines=lines,
                max_channels=draw(st.none() | st.integers(1, 10000)),
                number_carrying=NumberCarrying(
                    present_caller_id=True, p_asserted_identity=draw(st.booleans()), verify=draw(st.booleans())
                ),
            )
        hotlines[n] = Hotline(
            number=n,
            name=draw(label),
            kind=draw(st.sampled_from(["service", "emergency", "utility"])),
            dids=(n,),
            agent_queues=(q,),
            outbound_trunk=trunk,
            expert=expert,
            answer_rate_target=draw(st.floats(0, 1, allow_nan=False)),
        )
    rules: dict[str, TransferRule] = {}
    for a in nums:
        codes = iter(draw(st.permutations(CODES)))
        for b in nums:
            if a == b or not draw(st.booleans()):
                continue
            rule_cats = tuple(draw(st.lists(st.sampled_from(cats), unique=True))) if cats else ()
            emergency = "emergency" in (hotlines[a].kind, hotlines[b].kind, *rule_cats)
            mode = draw(st.sampled_from(["blind", "attended", "threeway"]))
            chain = draw(st.sampled_from(SAFE_CHAINS if emergency else ANY_CHAINS))
            rid = f"r-{a}-{b}"
            rules[rid] = TransferRule(
                id=rid,
                from_hotline=a,
                to_hotline=b,
                code=next(codes),
                mode=mode,
                target="expert" if hotlines[b].expert is not None and draw(st.booleans()) else "agents",
                carry_number=draw(st.booleans()),
                answer_timeout=draw(st.integers(5, 300)),
                failure=chain,
                categories=rule_cats,
                agent_leaves=mode == "threeway" and draw(st.booleans()),
                label=draw(st.just("") | label),
            )
    overflow: dict[str, Overflow] = {}
    for i, n in enumerate(nums[:-1]):  # only towards later queues: no loops
        if draw(st.booleans()):
            waiting = draw(st.integers(2, 50))
            overflow[f"of-{n}"] = Overflow(
                id=f"of-{n}",
                queue=f"q-{n}",
                start=OverflowStart(waiting_calls=waiting, longest_wait=draw(st.none() | st.integers(10, 600))),
                recover=OverflowRecover(waiting_calls=draw(st.integers(0, waiting - 1))),
                to_queue=f"q-{nums[i + 1]}",
            )
    modes: dict[str, Mode] = {}
    if draw(st.booleans()):
        modes["normal"] = Mode(name="normal", label=draw(label), rules=tuple(rules))
        modes["surge"] = Mode(name="surge", extends="normal", overflow=tuple(overflow))
    nuisance = None
    if draw(st.booleans()):
        nuisance = NuisancePolicy(
            window=draw(st.integers(10, 86400)),
            threshold=draw(st.integers(2, 1000)),
            exempt=tuple(draw(st.lists(st.from_regex(r"1[0-9]{10}", fullmatch=True), max_size=2))),
            actions=tuple(
                draw(st.lists(st.sampled_from(["tag", "notify_110", "announcement"]), min_size=1, unique=True))
            ),
            hotlines=tuple(draw(st.lists(st.sampled_from(nums), unique=True))),
        )
    return DialplanModel(
        categories=categories,
        hotlines=hotlines,
        trunks=trunks,
        queues=queues,
        rules=rules,
        overflow=overflow,
        modes=modes,
        nuisance=nuisance,
    )


def _dump(data: dict[str, Any]) -> str:
    yaml = YAML()
    yaml.allow_unicode = True
    buf = io.StringIO()
    yaml.dump(data, buf)
    return buf.getvalue()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialplans())
def test_valid_models_round_trip_through_yaml(model: DialplanModel) -> None:
    text = _dump(model.to_yaml_data())
    plan = parse_dialplan_text(text, "roundtrip.yaml")
    assert plan.model == model


@settings(max_examples=20, deadline=None)
@given(dialplans())
def test_lookups_agree_with_the_model(model: DialplanModel) -> None:
    plan = parse_dialplan_text(_dump(model.to_yaml_data()))
    for number, hotline in model.hotlines.items():
        assert plan.hotline_of_did(number) == hotline
        assert plan.hotline_of_queue(f"q-{number}") == hotline
        for rule in plan.rules_from(number):
            assert plan.rule_for_code(number, rule.code) == rule
        lines = plan.lines_for(number)
        assert lines == (model.trunks[hotline.outbound_trunk].lines if hotline.outbound_trunk else ())


SECTION_KEYS = ["hotlines", "trunks", "queues", "rules", "overflow", "modes", "nuisance", "engine", "start_mode"]
FIELD_KEYS = ["name", "kind", "lines", "members", "from_hotline", "to_hotline", "code", "failure", "queue", "start"]
scalars = st.none() | st.booleans() | st.integers(-5, 200000) | st.sampled_from(["*1", "110", "q", "emergency", ""])
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from([*FIELD_KEYS, "110", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(SECTION_KEYS), junk, max_size=5))
def test_any_yaml_gives_a_plan_or_located_problems_never_a_crash(data: dict[str, Any]) -> None:
    text = _dump(data)
    try:
        parse_dialplan_text(text, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.file == "fuzz.yaml" and p.line >= 1 and p.column >= 1 and p.message, p
