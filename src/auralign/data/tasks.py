"""Task builders for the ACC recipe (PAPERS.md section 1): AC, ADC and ACC samples from captioned clips.

Pairs follow AUDIT-style editing, first audio = original, second = edited, with A a captioned base clip and
B, C single-event clips:

| op      | audios       | ADC target          | ACC target                                       |
|---------|--------------|---------------------|--------------------------------------------------|
| add     | (A, A+B)     | "add B"             | caption(A), the original                         |
| drop    | (A+B, A)     | "drop B"            | caption(A), the edited audio                     |
| replace | (A+B, A+C)   | "replace B with C"  | longest shared phrase of the two mixture captions |

A mixture's caption is "<caption A><connector> <event phrase>" with a connector drawn from the templates.
Planning is pure and deterministic given the seed; rendering the audio is `auralign.data.build`'s job.

`PAIR_TASKS` is the table of tasks asked of each rendered pair (ADC, ACC): a new one is a target function
and one entry (plus a `Prompts` field if its prompt should be configurable); the build writes
`<split>/<task>.jsonl` for every entry.
"""

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from auralign.config import StrictModel
from auralign.data.manifest import Sample, make_sample
from auralign.data.readers import Clip
from auralign.data.text import longest_common_phrase, mixture_caption

Op = Literal["add", "drop", "replace"]
OPS: tuple[Op, ...] = ("add", "drop", "replace")


class Prompts(StrictModel):
    # The AC prompt is not published; this one is our choice. ADC and ACC prompts are the paper's.
    ac: str = "Describe the audio in one sentence."
    adc: str = "Tell me the difference between the second audio and the first one."
    acc: str = "Tell me the similarities between the two audios."


class Templates(StrictModel):
    """How mixture captions and edit instructions are written ({event}, {replacement}: event phrases)."""

    connectors: tuple[str, ...] = Field(default=(", with", ", while", ", and"), min_length=1)
    add: str = "add {event}"
    drop: str = "drop {event}"
    replace: str = "replace {event} with {replacement}"


@dataclass(frozen=True)
class PairPlan:
    """One planned edit pair: which clips, which captions, and the rendering seed."""

    id: str
    index: int
    op: Op
    base: Clip
    event: Clip
    replacement: Clip | None
    captions: tuple[str, str]  # captions of the first and second audio
    base_caption: str
    seed: tuple[int, ...]

    @property
    def sources(self) -> list[Clip]:
        return [c for c in (self.base, self.event, self.replacement) if c is not None]


def event_phrase(clip: Clip) -> str:
    """How a caption names a single-event clip: its `phrase` when the corpus gives one, else its label."""
    return clip.meta.get("phrase") or (clip.label or clip.id).replace("_", " ")


def split_seed(seed: int, split: str) -> list[int]:
    return [seed, zlib.crc32(split.encode())]


def plan_pairs(
    split: str,
    bases: Sequence[Clip],
    events: Sequence[Clip],
    counts: Mapping[str, int],
    seed: int,
    templates: Templates,
) -> list[PairPlan]:
    """Plan `counts[op]` pairs per op. Same inputs and seed, same plan, whatever the machine or sharding."""
    if not bases:
        raise ValueError(f"split '{split}': no base clips to build pairs from")
    captioned = [clip for clip in bases if clip.captions]
    if len(captioned) != len(bases):
        raise ValueError(f"split '{split}': {len(bases) - len(captioned)} base clip(s) have no caption")
    labels = sorted({clip.label or clip.id for clip in events})
    if any(counts.get(op, 0) for op in OPS) and not events:
        raise ValueError(f"split '{split}': pairs requested but no event clips given")
    if counts.get("replace", 0) and len(labels) < 2:
        raise ValueError(f"split '{split}': 'replace' needs event clips of at least two labels")
    by_label = {label: [c for c in events if (c.label or c.id) == label] for label in labels}
    rng = np.random.default_rng(split_seed(seed, split))
    plans: list[PairPlan] = []
    for op in OPS:
        for k in range(counts.get(op, 0)):
            base = captioned[rng.integers(len(captioned))]
            base_caption = base.captions[rng.integers(len(base.captions))]
            label_b = labels[rng.integers(len(labels))]
            event = by_label[label_b][rng.integers(len(by_label[label_b]))]
            replacement = None
            if op == "replace":
                others = [label for label in labels if label != label_b]
                label_c = others[rng.integers(len(others))]
                replacement = by_label[label_c][rng.integers(len(by_label[label_c]))]
            connectors = [templates.connectors[rng.integers(len(templates.connectors))] for _ in range(2)]
            captions = _pair_captions(op, base_caption, event, replacement, connectors)
            index = len(plans)
            plans.append(
                PairPlan(
                    id=f"{split}-{op}-{k:06d}",
                    index=index,
                    op=op,
                    base=base,
                    event=event,
                    replacement=replacement,
                    captions=captions,
                    base_caption=base_caption,
                    seed=(*split_seed(seed, split), index),
                )
            )
    return plans


def _pair_captions(
    op: Op, base_caption: str, event: Clip, replacement: Clip | None, connectors: list[str]
) -> tuple[str, str]:
    with_event = mixture_caption(base_caption, connectors[0], event_phrase(event))
    if op == "add":
        return base_caption, with_event
    if op == "drop":
        return with_event, base_caption
    assert replacement is not None
    return with_event, mixture_caption(base_caption, connectors[1], event_phrase(replacement))


def adc_target(plan: PairPlan, templates: Templates) -> str:
    template = getattr(templates, plan.op)
    replacement = event_phrase(plan.replacement) if plan.replacement else ""
    return template.format(event=event_phrase(plan.event), replacement=replacement)


def acc_target(plan: PairPlan, templates: Templates) -> str:
    """Caption of the shared content: the original for add, the edited audio for drop, the shared phrase for replace."""
    if plan.op in ("add", "drop"):
        return plan.base_caption
    return longest_common_phrase(*plan.captions)


@dataclass(frozen=True)
class PairTask:
    """A task asked of every rendered edit pair: the configured prompt it asks and its answer.

    A pair whose answer is empty for any task is left out of every pair task; `unanswerable` says why in the
    build summary (formatted with the pair's two captions as `first` and `second`).
    """

    prompt: Callable[[Prompts], str]
    target: Callable[[PairPlan, Templates], str]
    unanswerable: str = "no target"


PAIR_TASKS: dict[str, PairTask] = {
    "adc": PairTask(prompt=lambda prompts: prompts.adc, target=adc_target),
    "acc": PairTask(
        prompt=lambda prompts: prompts.acc,
        target=acc_target,
        unanswerable="the two captions share no phrase ({first!r} / {second!r})",
    ),
}


def pair_samples(
    plan: PairPlan, *, audios: list[str], prompts: Prompts, templates: Templates, info: Mapping
) -> dict[str, Sample]:
    """The sample of every pair task for one rendered pair (`audios`: the two paths as the manifest writes them)."""
    meta = {
        "op": plan.op,
        "pair": plan.id,
        "base": plan.base.id,
        "event": plan.event.id,
        "replacement": plan.replacement.id if plan.replacement else None,
        "captions": list(plan.captions),
        "mix": dict(info),
    }
    samples = {}
    for name, task in PAIR_TASKS.items():
        target = task.target(plan, templates)
        samples[name] = make_sample(
            f"{name}-{plan.id}", name, task.prompt(prompts), audios, target, references=[target], meta=meta
        )
    return samples


def ac_samples(
    clips: Sequence[Clip], audio_path: Callable[[Clip], str], prompt: str, per_caption: bool
) -> list[Sample]:
    """Audio captioning samples: one per caption for training, or one per clip with all its captions as references."""
    samples = []
    for clip in clips:
        references = list(clip.captions)
        targets = references if per_caption else references[:1]
        for k, caption in enumerate(targets):
            sample_id = f"ac-{clip.id}-{k}" if per_caption else f"ac-{clip.id}"
            samples.append(
                make_sample(sample_id, "ac", prompt, [audio_path(clip)], caption, references=references)
            )
    return samples


def label_samples(
    clips: Sequence[Clip], task: str, prompt: str, audio_path: Callable[[Clip], str]
) -> list[Sample]:
    """Classification samples for the general-ability tasks: the label is the answer."""
    return [
        make_sample(f"{task}-{clip.id}", task, prompt, [audio_path(clip)], clip.label, label=clip.label)
        for clip in clips
    ]


def ratio_mix(
    sources: Mapping[str, Sequence[Sample]], weights: Mapping[str, float], size: int, seed: int
) -> list[Sample]:
    """A shuffled mix of `size` samples drawn from each source in proportion to its weight.

    Each source gives round(size * weight / total) samples, drawn without replacement while it lasts and
    cycled after that (so a small task can be up-weighted), in a seeded order.
    """
    unknown = set(weights) - set(sources)
    if unknown:
        raise ValueError(f"ratio mix names unknown source(s): {', '.join(sorted(unknown))}")
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError("ratio mix weights must be non-negative with a positive sum")
    rng = np.random.default_rng(seed)
    mixed: list[Sample] = []
    for name in sorted(weights):
        pool = list(sources[name])
        want = round(size * weights[name] / total)
        if want and not pool:
            raise ValueError(f"ratio mix source '{name}' is empty")
        order = np.concatenate(
            [rng.permutation(len(pool)) for _ in range(-(-want // max(len(pool), 1)))] or [[]]
        )
        mixed.extend(pool[int(i)] for i in order[:want])
    return [mixed[int(i)] for i in rng.permutation(len(mixed))]
