"""The deterministic default policy: a fixed plan, and a different one after each failure.

First attempt: segment → select the best candidate (and a second one when it is good
enough: a 3-layer sample) → refine_alpha each → inpaint → extract_shadow each (back to
front) → curate. After a failed verdict the next attempt changes what the curator
complained about:

* an object's alpha is implausible (area, border, fragments, edges) → swap that object
  for the next unused candidate, or drop it if another object remains;
* residue or a seam in the background → next inpainting fallback (another method /
  radius) and masks grown by ``grow_step_px``;
* the recomposition lost content (PSNR) → masks grown, so the matte covers the edge;
* a doubtful shadow (range, colour, detached, size) → drop that object's shadow;
* the VLM disagrees → next candidate.

Identical inputs give identical traces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from liwi.agents.base import AgentConfig, AgentState, ToolCall, ToolSpec

ALPHA_CODES = {"alpha_area", "alpha_border", "alpha_fragments", "alpha_edges", "vlm"}
BACKGROUND_CODES = {"residue", "seam"}
SHADOW_CODES = {"shadow_range", "shadow_colour", "shadow_detached", "shadow_size"}


@dataclass
class Plan:
    """What one attempt does; the policy edits it between attempts."""

    objects: list[int] = field(default_factory=list)  # candidate indices
    grow_px: int = 0  # added to every mask before matting
    inpaint: int = -1  # -1 = configured inpainter, k = inpaint_fallbacks[k]
    no_shadow: set[int] = field(default_factory=set)  # candidates whose shadow is dropped
    used: set[int] = field(default_factory=set)  # candidates tried so far


class RuleBasedPolicy:
    """Deterministic plans; see the module docstring."""

    name = "rule_based"

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.plan = Plan()
        self.phase = "segment"

    def reset(self, state: AgentState) -> None:
        self.plan = Plan()
        self.phase = "segment"

    def next_calls(self, state: AgentState) -> list[ToolCall]:
        if self.phase == "segment":
            self.phase = "plan"
            return [ToolCall("segment")]
        if self.phase == "plan":
            if not state.candidates:
                return [ToolCall("finish", {"reason": state.last_error or "no candidates"})]
            self.plan.objects = self.first_choice(state)
            self.plan.used |= set(self.plan.objects)
            self.phase = "verdict"
            return self.attempt_calls(state)
        # phase "verdict": read the last verdict, change the plan, or stop
        verdict = state.verdict
        if verdict is None or verdict.passed or len(state.attempts) >= self.config.max_attempts:
            return [ToolCall("finish")]
        if not self.revise(state):
            return [ToolCall("finish", {"reason": "no other strategy left"})]
        return self.attempt_calls(state)

    # -- choices -------------------------------------------------------------------------
    def good(self, state: AgentState) -> list[int]:
        """Candidates worth a layer, best first."""
        return [
            i for i, c in enumerate(state.candidates) if c.score >= self.config.min_candidate_score
        ] or [0]

    def first_choice(self, state: AgentState) -> list[int]:
        good = self.good(state)
        picks = good[:1]
        if self.config.max_objects >= 2:
            for i in good[1:]:
                if state.candidates[i].area >= self.config.second_object_min_area:
                    picks.append(i)
                    break
        return picks

    def next_unused(self, state: AgentState) -> int | None:
        for i in self.good(state):
            if i not in self.plan.used and i not in self.plan.objects:
                return i
        return None

    def revise(self, state: AgentState) -> bool:
        """Change the plan after a failed verdict; False when nothing is left to try."""
        verdict = state.verdict
        plan = self.plan
        changed = False
        chosen = list(state.chosen)  # back to front, aligned with verdict.object_failures
        for pos, codes in enumerate(verdict.object_failures):
            if pos >= len(chosen):
                break
            cand = chosen[pos]
            codes = set(codes)
            if codes & ALPHA_CODES:
                repl = self.next_unused(state)
                if repl is not None:
                    plan.objects = [repl if o == cand else o for o in plan.objects]
                    plan.used.add(repl)
                    changed = True
                elif len(plan.objects) > 1:
                    plan.objects = [o for o in plan.objects if o != cand]
                    changed = True
            if codes & SHADOW_CODES and cand not in plan.no_shadow:
                plan.no_shadow.add(cand)
                changed = True
        global_codes = set(verdict.failures)
        if global_codes & BACKGROUND_CODES:
            if plan.inpaint + 1 < len(self.config.inpaint_fallbacks):
                plan.inpaint += 1
                changed = True
            plan.grow_px += self.config.grow_step_px
            changed = True
        if "psnr" in global_codes and not changed:
            plan.grow_px += self.config.grow_step_px
            changed = True
        if "no_objects" in global_codes:
            repl = self.next_unused(state)
            if repl is not None:
                plan.objects = [repl]
                plan.used.add(repl)
                changed = True
        return changed

    def attempt_calls(self, state: AgentState) -> list[ToolCall]:
        """The tool calls of one attempt under the current plan."""
        plan = self.plan
        calls = [ToolCall("select_objects", {"candidates": list(plan.objects)})]
        for i in plan.objects:
            args = {"candidate": i}
            if plan.grow_px:
                args["grow_px"] = plan.grow_px
            calls.append(ToolCall("refine_alpha", args))
        spec: ToolSpec | None = (
            self.config.inpaint_fallbacks[plan.inpaint] if plan.inpaint >= 0 else None
        )
        if spec is None:
            calls.append(ToolCall("inpaint"))
        else:
            calls.append(ToolCall("inpaint", {"backend": spec.backend}, dict(spec.params)))
        # shadows are extracted back to front, the order select_objects establishes
        order = sorted(plan.objects, key=lambda i: state.candidates[i].bbox[3])
        for i in order:
            args = {"candidate": i}
            if i in plan.no_shadow:
                args["skip"] = True
            calls.append(ToolCall("extract_shadow", args))
        calls.append(ToolCall("curate"))
        return calls
