"""The agent contract: a :class:`Policy` chooses tool calls, the :class:`Agent` runs them.

The agent works on one image. A policy looks at the :class:`AgentState` (candidates found,
objects chosen, layers made so far, the curator's last verdict) and returns the next tool
call(s). The vocabulary, shared by the rule-based and the LLM policy, is the four tools
plus three agent actions:

==================  ==================================================================
``segment``         find candidate objects (tool; params = the segmenter's Params)
``select_objects``  choose which candidates become layers (1 → 2-layer, 2 → 3-layer)
``refine_alpha``    matte one chosen object (tool); ``grow_px`` widens its mask first
``inpaint``         remove all chosen objects from the photo (tool; ``backend`` picks one)
``extract_shadow``  split an object's shadow off the background (tool); ``skip`` drops it
``curate``          assemble the stack and ask the curator; ends an attempt
``finish``          stop (the best attempt so far is the result)
==================  ==================================================================

Every call, its arguments, parameters, wall time and outcome goes into ``state.trace``
(stored as the row's ``agent_trace``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from liwi.add.curator import Curator, Verdict
from liwi.layers import LayerStack
from liwi.tools.registry import AGENT_TOOLS, DEFAULT_BACKENDS

if TYPE_CHECKING:
    from liwi.agents.toolbox import Toolbox

ACTIONS = ("select_objects", "curate", "finish")


class ToolSpec(BaseModel):
    """Which implementation of a tool to use, how to build it and its default params."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = "classical"  # registry backend name (classical, sam2, diffusers, …)
    config: dict[str, Any] = Field(default_factory=dict)  # constructor kwargs (weights …)
    params: dict[str, Any] = Field(default_factory=dict)  # default call params


class LLMConfig(BaseModel):
    """An OpenAI-compatible chat endpoint that speaks tool calling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str = "http://127.0.0.1:8000/v1"  # base URL; /chat/completions is appended
    model: str = "local"  # model name sent in the request
    api_key_env: str | None = None  # env var holding a bearer token (never logged)
    timeout_s: float = 60.0  # per request
    temperature: float = 0.0  # deterministic answers where the server honours it
    max_steps: int = 24  # tool calls per image before the agent gives up
    send_image: bool = False  # attach the photo (PNG data URL) for vision-language models
    image_side: int = 512  # longer side of the attached photo, px


def _default_tools() -> dict[str, ToolSpec]:
    return {name: ToolSpec(backend=DEFAULT_BACKENDS[name]) for name in AGENT_TOOLS}


class AgentConfig(BaseModel):
    """How the agent decomposes one image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["rule_based", "llm"] = "rule_based"  # deterministic default
    max_attempts: int = Field(3, ge=1, le=10)  # curate() calls per image
    max_objects: int = Field(2, ge=1, le=2)  # 1 → only 2-layer samples; 2 → 3-layer allowed
    min_candidate_score: float = 0.55  # a candidate below this is not worth a layer
    second_object_min_area: float = 0.01  # a second object must cover ≥1% to make a 3-layer sample
    grow_step_px: int = 4  # "wider mask" retries grow the object masks by this much each
    consistent_foreground: bool = True  # solve F (and edge α) so αF + (1−α)·B·S = photo
    tools: dict[str, ToolSpec] = Field(default_factory=_default_tools)
    inpaint_fallbacks: list[ToolSpec] = Field(  # tried in order when the background fails
        default_factory=lambda: [
            ToolSpec(params={"method": "ns", "dilate_px": 9, "radius": 7}),
            ToolSpec(params={"method": "telea", "dilate_px": 13, "multiscale": True}),
        ]
    )
    llm: LLMConfig = Field(default_factory=LLMConfig)


@dataclass
class ToolCall:
    """One step chosen by a policy: a tool or an agent action, its arguments and params."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)  # agent-level: candidate, backend …
    params: dict[str, Any] = field(default_factory=dict)  # the tool's own Params
    call_id: str | None = None  # the LLM's tool_call id, echoed back


@dataclass
class Attempt:
    """One assembled stack and the curator's verdict on it."""

    index: int
    stack: LayerStack
    verdict: Verdict
    plan: dict[str, Any]


@dataclass
class AgentState:
    """Everything the policy may look at while working on one image."""

    image: np.ndarray
    sample_id: str = ""
    saliency: np.ndarray | None = None  # the prior's map of ``image``, precomputed by ADD
    candidates: list[Any] = field(default_factory=list)  # segment's MaskCandidate list
    chosen: list[int] = field(default_factory=list)  # candidate indices, back to front
    grow_px: dict[int, int] = field(default_factory=dict)  # per chosen candidate
    mattes: dict[int, Any] = field(default_factory=dict)  # candidate → MattingOutput
    matte_cache: dict[str, Any] = field(default_factory=dict)  # (candidate, grow, params) → out
    inpainted: np.ndarray | None = None  # photo without the objects (shadows kept)
    inpaint_backend: str = ""
    shadows: dict[int, Any] = field(default_factory=dict)  # candidate → ShadowOutput | None
    attempts: list[Attempt] = field(default_factory=list)
    trace: list[dict[str, Any]] = field(default_factory=list)
    last_error: str | None = None
    finished: bool = False

    @property
    def verdict(self) -> Verdict | None:
        return self.attempts[-1].verdict if self.attempts else None

    def summary(self) -> dict[str, Any]:
        """JSON view of the state for an LLM (no pixels)."""
        h, w = self.image.shape[:2]
        return {
            "image": {"width": w, "height": h},
            "candidates": [
                {
                    "index": i,
                    "score": round(c.score, 3),
                    "area": round(c.area, 4),
                    "bbox": list(c.bbox),
                }
                for i, c in enumerate(self.candidates)
            ],
            "chosen": self.chosen,
            "matted": sorted(self.mattes),
            "inpainted": self.inpainted is not None,
            "shadows": {str(k): (v is not None) for k, v in self.shadows.items()},
            "attempts": len(self.attempts),
            "last_verdict": self.verdict.to_json() if self.verdict else None,
            "last_error": self.last_error,
        }


@dataclass
class AgentResult:
    """What the agent hands to the stage: the chosen stack, its verdict and the trace."""

    stack: LayerStack | None
    verdict: Verdict | None
    trace: list[dict[str, Any]]
    reasons: list[str] = field(default_factory=list)
    attempts: int = 0


class Policy(Protocol):
    """Chooses the next tool call(s) from the state; reads ``state.verdict`` to retry."""

    name: str

    def reset(self, state: AgentState) -> None:
        """Start a new image."""

    def next_calls(self, state: AgentState) -> list[ToolCall]:
        """The next calls; ``[]`` or a ``finish`` call ends the episode."""


def attempt_rank(a: Attempt) -> tuple[float, ...]:
    """Order attempts: passed first, then fewer failures, then more objects, higher PSNR."""
    v = a.verdict
    return (float(v.passed), -len(v.failures), len(a.stack.objects), v.scores.get("psnr", 0.0))


class Agent:
    """Runs a policy's tool calls on one image, with the curator in the loop."""

    def __init__(
        self,
        policy: Policy,
        toolbox: Toolbox,
        curator: Curator,
        config: AgentConfig | None = None,
    ) -> None:
        self.policy = policy
        self.toolbox = toolbox
        self.curator = curator
        self.config = config or AgentConfig()

    def setup(self) -> None:
        self.toolbox.setup()

    def run(
        self, image: np.ndarray, sample_id: str = "", saliency: np.ndarray | None = None
    ) -> AgentResult:
        """Decompose ``image``; ``saliency`` (the salient prior's 320×320 fused map of it,
        from a batched model stage) saves the segmenter's network pass."""
        state = AgentState(image=image, sample_id=sample_id, saliency=saliency)
        self.policy.reset(state)
        max_steps = self.config.llm.max_steps if self.config.policy == "llm" else 64
        steps = 0
        observe = getattr(self.policy, "observe", None)
        while not state.finished and steps < max_steps:
            try:
                calls = self.policy.next_calls(state)
            except Exception as exc:  # noqa: BLE001 - e.g. the LLM endpoint is down
                state.last_error = f"policy {self.policy.name}: {exc}"
                state.trace.append(
                    {
                        "step": len(state.trace),
                        "tool": "policy",
                        "outcome": "error",
                        "result": {"error": state.last_error},
                    }
                )
                break
            if not calls:
                break
            for call in calls:
                steps += 1
                observation = self.execute(state, call)
                if observe is not None:
                    observe(call, observation)
                if state.finished or len(state.attempts) >= self.config.max_attempts:
                    state.finished = True
                    break
        return self.result(state)

    def result(self, state: AgentState) -> AgentResult:
        if not state.attempts:
            reason = state.last_error or "the agent produced no layers"
            return AgentResult(None, None, state.trace, [f"agent: {reason}"], 0)
        best = max(state.attempts, key=attempt_rank)
        stack = best.stack
        stack.meta.update({"attempt": best.index, "sample_id": state.sample_id})
        return AgentResult(
            stack, best.verdict, state.trace, list(best.verdict.reasons), len(state.attempts)
        )

    # -- execution ---------------------------------------------------------------------
    def execute(self, state: AgentState, call: ToolCall) -> dict[str, Any]:
        """Run one call, record it in the trace, return a JSON-able observation."""
        t0 = time.perf_counter()
        entry: dict[str, Any] = {
            "step": len(state.trace),
            "attempt": len(state.attempts),
            "tool": call.name,
            "args": call.args,
            "params": call.params,
        }
        try:
            observation = self._dispatch(state, call)
            entry["outcome"] = "ok"
            if call.name != "finish":  # keep the error that made the policy give up
                state.last_error = None
        except Exception as exc:  # noqa: BLE001 - a failed tool is an observation, not a crash
            observation = {"error": f"{type(exc).__name__}: {exc}"}
            entry["outcome"] = "error"
            state.last_error = f"{call.name}: {exc}"
        entry["seconds"] = round(time.perf_counter() - t0, 4)
        entry["result"] = observation
        state.trace.append(json.loads(json.dumps(entry, default=str)))
        return observation

    def _dispatch(self, state: AgentState, call: ToolCall) -> dict[str, Any]:
        name, args = call.name, call.args
        if name == "finish":
            state.finished = True
            return {"finished": True}
        if name == "segment":
            out = self.toolbox.segment(state.image, call.params, args, state.saliency)
            state.candidates = list(out.candidates)
            state.chosen, state.mattes, state.shadows, state.inpainted = [], {}, {}, None
            state.matte_cache = {}
            result: dict[str, Any] = {"candidates": state.summary()["candidates"]}
            licence = getattr(self.toolbox.tool("segment"), "licence", None)
            if licence:  # pretrained weights used: their licence goes into the row's trace
                result["weights"] = licence
            return result
        if name == "select_objects":
            return self._select(state, [int(i) for i in args.get("candidates", [])])
        if name == "refine_alpha":
            i = int(args["candidate"])
            if i not in state.chosen:
                raise ValueError(f"candidate {i} is not selected (selected: {state.chosen})")
            grow = int(args.get("grow_px", 0))
            state.grow_px[i] = grow
            key = json.dumps([i, grow, call.params], sort_keys=True, default=str)
            if key not in state.matte_cache:
                state.matte_cache[key] = self.toolbox.refine_alpha(
                    state.image, state.candidates[i].mask, grow, call.params
                )
            state.mattes[i] = state.matte_cache[key]
            state.inpainted, state.shadows = None, {}
            alpha = state.mattes[i].alpha
            return {"candidate": i, "area": round(float(alpha.mean()), 4)}
        if name == "inpaint":
            missing = [i for i in state.chosen if i not in state.mattes]
            if not state.chosen or missing:
                raise ValueError(f"matte the selected objects first (missing {missing})")
            backend = args.get("backend") or self.toolbox.default_backend("inpaint")
            hole = np.maximum.reduce([state.mattes[i].alpha for i in state.chosen])
            state.inpainted = self.toolbox.inpaint(state.image, hole, backend, call.params)
            state.inpaint_backend = backend
            state.shadows = {}
            return {"backend": backend, "hole_area": round(float((hole > 0.05).mean()), 4)}
        if name == "extract_shadow":
            i = int(args["candidate"])
            if state.inpainted is None:
                raise ValueError("inpaint before extracting shadows")
            if i not in state.chosen:
                raise ValueError(f"candidate {i} is not selected")
            pos = state.chosen.index(i)
            for later in state.chosen[pos:]:  # later objects' shadows were found on top of this
                state.shadows.pop(later, None)
            if args.get("skip"):
                state.shadows[i] = None
                return {"candidate": i, "shadow": "dropped"}
            base = self._background(state, upto=pos)
            out = self.toolbox.extract_shadow(state.image, state.mattes[i].alpha, base, call.params)
            state.shadows[i] = out if out.found else None
            stats = {k: round(float(v), 4) for k, v in (out.stats or {}).items()}
            return {"candidate": i, "found": bool(out.found), **stats}
        if name == "curate":
            return self._curate(state, call)
        raise ValueError(f"unknown tool {name!r}")

    def _select(self, state: AgentState, picks: list[int]) -> dict[str, Any]:
        if not state.candidates:
            raise ValueError("segment first: there are no candidates")
        if not picks or len(picks) > self.config.max_objects:
            raise ValueError(f"select 1 to {self.config.max_objects} candidates, got {picks}")
        bad = [i for i in picks if not 0 <= i < len(state.candidates)]
        if bad or len(set(picks)) != len(picks):
            raise ValueError(f"invalid candidate indices {picks} ({len(state.candidates)} found)")
        # Back to front: the object whose bottom edge is higher in the frame is farther away.
        state.chosen = sorted(picks, key=lambda i: state.candidates[i].bbox[3])
        state.mattes = {i: m for i, m in state.mattes.items() if i in picks}
        state.shadows, state.inpainted = {}, None
        return {"chosen_back_to_front": state.chosen}

    @staticmethod
    def _background(state: AgentState, upto: int | None = None) -> np.ndarray:
        """Shadow-free background after the shadows of ``chosen[:upto]`` were split off.

        Shadows are extracted back to front; each extraction returns the background with
        its shadow divided out (and the object's area re-filled), which the next one starts
        from.
        """
        base = state.inpainted
        for j in state.chosen[:upto]:
            out = state.shadows.get(j)
            if out is not None:
                base = out.background
        return base

    def assemble(self, state: AgentState) -> LayerStack:
        """The stack from the current state (objects without an extracted shadow get none)."""
        if not state.chosen or state.inpainted is None:
            raise ValueError("nothing to assemble: select, matte and inpaint first")
        missing = [i for i in state.chosen if i not in state.mattes]
        if missing:
            raise ValueError(f"objects {missing} have no matte yet")
        inpainted = self._background(state)
        total_att = np.ones_like(state.image)
        for i in state.chosen:
            if state.shadows.get(i) is not None:
                total_att = total_att * state.shadows[i].attenuation
        # Where no object covers the photo, the background *is* the photo (shadows divided
        # out): the inpainted halo ring would only cost fidelity there. Two passes: the
        # edge-alpha refit of the first pass can shrink the support.
        exact = np.clip(state.image / np.maximum(total_att, 1e-3), 0.0, 1.0)
        alphas = [state.mattes[i].alpha for i in state.chosen]
        for _ in range(2 if self.config.consistent_foreground else 1):
            support = np.maximum.reduce(alphas) > 1e-3
            background = np.where(support[..., None], inpainted, exact).astype(np.float32)
            objects, alphas = self._objects(state, background)
        return LayerStack(background=background, objects=objects)

    def _objects(self, state: AgentState, background: np.ndarray) -> tuple[list, list]:
        """Object layers over ``background``, back to front, and their alphas."""
        from liwi.layers import ObjectLayer

        shaded = background.copy()
        objects = []
        for i in state.chosen:
            m, out = state.mattes[i], state.shadows.get(i)
            att = out.attenuation if out is not None else None
            if att is not None:
                shaded = shaded * att
            color, alpha = m.foreground, m.alpha
            if self.config.consistent_foreground:
                color, alpha = consistent_layer(state.image, m.alpha, m.foreground, shaded)
            obj = ObjectLayer.from_maps(
                color,
                alpha,
                att,
                label=f"object_{i}",
                scores={"segment_score": float(state.candidates[i].score)},
            )
            objects.append(obj)
            a = obj.alpha[..., None]
            shaded = a * obj.rgba[..., :3] + (1.0 - a) * shaded
        return objects, [o.alpha for o in objects]

    def _curate(self, state: AgentState, call: ToolCall) -> dict[str, Any]:
        stack = self.assemble(state)
        verdict = self.curator(state.image, stack)
        plan = {
            "chosen": list(state.chosen),
            "grow_px": {str(k): v for k, v in state.grow_px.items() if k in state.chosen},
            "inpaint_backend": state.inpaint_backend,
            "shadows": [state.shadows.get(i) is not None for i in state.chosen],
        }
        state.attempts.append(Attempt(len(state.attempts), stack, verdict, plan))
        return verdict.to_json()


def consistent_layer(
    image: np.ndarray, alpha: np.ndarray, foreground: np.ndarray, below: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Colour F (and, at soft edges, alpha) so ``α·F + (1 − α)·below`` matches the photo.

    ``below`` is what the object covers in the stack (shaded background and the objects
    behind it). Where α > 0.05 the colour is solved exactly, ``F = (I − (1 − α)·below) / α``,
    if that stays in [0, 1]. Elsewhere in the soft edge (0 < α < 1) the matting colour is
    kept and alpha is re-fitted per pixel, ``α = ⟨I − below, F − below⟩ / |F − below|²``
    (clipped to [0, 1]), the least-squares alpha for that colour and background.
    """
    a = alpha[..., None]
    solved = (image - (1.0 - a) * below) / np.maximum(a, 1e-3)
    in_range = ((solved >= -0.02) & (solved <= 1.02)).all(axis=2, keepdims=True)
    valid = (a > 0.05) & in_range
    color = np.where(valid, np.clip(solved, 0.0, 1.0), foreground).astype(np.float32)
    soft = (~valid[..., 0]) & (alpha > 1e-3) & (alpha < 0.999)
    diff = foreground - below
    denom = (diff * diff).sum(axis=2)
    fitted = ((image - below) * diff).sum(axis=2) / np.maximum(denom, 1e-4)
    refit = soft & (denom > 1e-3)
    new_alpha = np.where(refit, np.clip(fitted, 0.0, 1.0), alpha).astype(np.float32)
    return color, new_alpha
