"""Random but realistic audio captions (AudioCaps / Clotho style) for tests and benchmarks.

Templates and vocabulary are written by hand after the style of real audio captions: sound sources, actions,
places, time relations, and the punctuation / casing habits of human annotators and of models.
"""

import random

SOURCES = ["a dog", "dogs", "a man", "a woman", "a child", "children", "people", "a crowd", "birds", "a bird",
           "a car", "cars", "a train", "an engine", "a motorcycle", "a helicopter", "an aircraft", "rain",
           "water", "the wind", "a baby", "a cat", "a duck", "a rooster", "a siren", "a bell", "a clock",
           "a door", "footsteps", "a vehicle", "an insect", "frogs", "a sheep", "a horse", "thunder", "a crow",
           "a toilet", "a faucet", "a drill", "a saw", "a vacuum cleaner", "a typewriter", "a phone"]  # fmt: skip
ACTIONS = ["barks", "is barking", "speaks", "is speaking", "talk", "chirp", "are chirping", "passes by",
           "drives by", "idles", "revs", "hums", "falls", "is falling", "pours", "flows", "blows", "cries",
           "meows", "quacks", "crows", "wails", "rings", "ticks", "creaks", "opens", "closes", "walk",
           "buzzes", "croak", "bleats", "neighs", "rumbles", "caws", "flushes", "runs", "whirs", "cuts",
           "clicks", "beeps", "laughs", "sings", "whistles", "splashes", "sizzles"]  # fmt: skip
PLACES = ["in the distance", "nearby", "in the background", "on a street", "in a park", "indoors",
          "outside", "in a forest", "on a busy road", "in a small room", "near a river", "at a train station",
          "in a kitchen", "on the beach", "far away", "loudly", "softly", "repeatedly", "several times",
          "continuously", "for a while", "in a large hall"]  # fmt: skip
LINKS = ["while", "as", "and", "then", "followed by", "before", "after", "with", "over", "as well as"]
TEMPLATES = [
    "{S} {A} {P}",
    "{S} {A}",
    "{S} {A} {L} {S2} {A2}",
    "{S} {A} {P} {L} {S2} {A2} {P2}",
    "{S} {A} {P}, {L} {S2} {A2}",
    "the sound of {S} {P}",
    "{S} {A} and {A2} {P}",
    "someone is using {S} {P}",
    "in the background, {S} {A}",
    "{S} {A}; {S2} {A2} {P2}",
    "{S} {A} {P} - {S2} {A2}",
]
_ODD = ["it's", "don't", "can't", "U.S.", "Mr. Smith", "(loudly)", '"hey"', "etc.", "1,000", "3.5", "e-mail",
        "café", "naïve", "—", "…", "“quiet”", "cannot", "gonna", "wanna", "a.m.", "rock'n'roll", "!!", "?",
        "½", "ﬁne", "über", "Zürich", "niño", "日本", "emoji 🙂", "AT&T", "--", "...", "'", "`"]  # fmt: skip


def caption(rng: random.Random, style: str = "plain") -> str:
    """One caption. style: "plain" (lower case, no punctuation), "human" (capitalised, full stop), "odd" (with
    contractions, abbreviations, quotes, numbers and non-ASCII text)."""
    fill = {
        "S": rng.choice(SOURCES),
        "A": rng.choice(ACTIONS),
        "P": rng.choice(PLACES),
        "L": rng.choice(LINKS),
        "S2": rng.choice(SOURCES),
        "A2": rng.choice(ACTIONS),
        "P2": rng.choice(PLACES),
    }
    text = rng.choice(TEMPLATES).format(**fill)
    if rng.random() < 0.15:  # repeated words, as degenerate model outputs have
        words = text.split()
        i = rng.randrange(len(words))
        text = " ".join(words[: i + 1] + [words[i]] * rng.randint(1, 3) + words[i + 1 :])
    if style == "plain":
        return text.replace(",", "").replace(";", "").replace(" -", "")
    if style == "human":
        return text[0].upper() + text[1:] + rng.choice([".", ".", ".", "", "!"])
    words = text.split()
    for _ in range(rng.randint(1, 3)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(_ODD))
    return rng.choice([str.capitalize, str.upper, str.lower, str])(" ".join(words)) + rng.choice(
        [".", "", "?"]
    )


def caption_corpus(
    n: int, n_refs: int | tuple[int, int] = 5, seed: int = 0, style: str = "human", identical: float = 0.0
) -> tuple[list[str], list[list[str]]]:
    """`n` candidates with `n_refs` references each (a fixed count or a (low, high) range). `identical` is the
    share of candidates that copy one of their references verbatim."""
    rng = random.Random(seed)
    cands, refs = [], []
    for _ in range(n):
        k = n_refs if isinstance(n_refs, int) else rng.randint(*n_refs)
        group = [caption(rng, style) for _ in range(k)]
        cand = rng.choice(group) if rng.random() < identical else caption(rng, rng.choice(["plain", style]))
        cands.append(cand)
        refs.append(group)
    return cands, refs
