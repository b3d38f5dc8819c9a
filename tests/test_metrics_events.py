"""auralign.metrics.events: which of a scene's sources a caption names, and the vocabulary it reads them with."""

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from auralign.data.mini.av import DISTRACTORS, LOOKS, SETTINGS, visual_caption
from auralign.data.mini.scenes import scene_captions
from auralign.errors import DataError
from auralign.metrics.events import event_scores, load_synonyms, named_labels, scene_labels

CATALOGUE = Path(__file__).parents[1] / "src" / "auralign" / "data" / "mini" / "catalogue.yaml"
EVENTS = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))["events"]


# --- the vocabulary against the mini world ------------------------------------------------------------------


def test_every_catalogue_label_has_synonyms_and_nothing_else_does() -> None:
    assert set(load_synonyms()) == set(EVENTS)


def test_each_catalogue_phrase_and_tag_names_its_own_label_alone() -> None:
    for label, entry in EVENTS.items():
        texts = [*entry["phrases"], *([entry["tag"]] if "tag" in entry else [])]  # tag-style captions
        for text in texts:
            assert named_labels(text) == {label}, text


def test_each_drawing_names_its_label_and_silent_things_and_settings_name_nothing() -> None:
    for label, look in LOOKS.items():
        assert named_labels(look.noun) == {label}, look.noun
    for thing in [*(look.noun for look in DISTRACTORS.values()), *SETTINGS]:
        assert named_labels(thing) == set(), thing
    rng = np.random.default_rng(0)
    for _ in range(200):  # the frames' visual captions name exactly the sound sources drawn
        sounding = [str(x) for x in rng.choice(list(LOOKS), size=rng.integers(0, 3), replace=False)]
        silent = [str(x) for x in rng.choice(list(DISTRACTORS), size=rng.integers(0, 3), replace=False)]
        if sounding or silent:
            caption = visual_caption(sounding + silent, str(rng.choice(list(SETTINGS))))
            assert named_labels(caption) == set(sounding), caption


def test_every_reference_caption_of_a_scene_names_exactly_its_sources() -> None:
    rng = np.random.default_rng(1)
    labels = list(EVENTS)
    scenes = [[a] for a in labels] + [list(p) for p in itertools.combinations(labels, 2)]
    scenes += [[str(x) for x in rng.choice(labels, size=3, replace=False)] for _ in range(200)]
    for chosen in scenes:
        onsets = sorted(rng.uniform(0, 6, size=len(chosen)))
        events = [
            {
                "label": lab,
                "phrase": EVENTS[lab]["phrases"][0],
                "onset": o,
                "seconds": 2.0,
                "level_db": -20.0 - 4 * k,
            }
            for k, (lab, o) in enumerate(zip(chosen, onsets, strict=True))
        ]
        for caption in scene_captions(events, rng):
            assert named_labels(caption) == set(chosen), caption


# --- reading captions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caption", "named"),
    [
        ("Two dogs barking loudly.", {"dog_bark"}),  # plural and verb forms, as listed
        ("A DOG!", {"dog_bark"}),  # case
        ("a doggy and some barkings", set()),  # no stemming: unlisted forms name nothing
        ("a catalogue of owlish scowls in a bowl", set()),  # no word inside another word
        ("a string quartet", {"plucked_string"}),  # "ring" inside "string" is no telephone
        ("humans humming", {"low_hum"}),  # "hum" inside "humans" is not a hum
        ("a fire engine passes, then white noise", {"siren", "static_noise"}),  # multi-word terms
        ("an alarm clock and a clock", {"alarm_clock", "ticking"}),  # the longer match takes its words
        ("an alarm beeping, a microwave beeping", {"alarm_clock", "beeping"}),
        ("tick-tock goes the metronome", {"ticking"}),  # hyphens split words as in the terms
        ("someone is talking", {"man_speaking", "woman_speaking"}),  # a shared term names each of its labels
        ("a woman's voice", {"woman_speaking"}),  # ... unless one of them is named on its own
        ("a man and a woman talking", {"man_speaking", "woman_speaking"}),
        ("a man speaking, then voices and a dog", {"man_speaking", "dog_bark"}),
        ("a stringed instrument", {"plucked_string", "cello"}),
        ("a bowed stringed instrument", {"cello"}),
        ("", set()),
    ],
)
def test_named_labels_of_hand_written_captions(caption: str, named: set[str]) -> None:
    assert named_labels(caption) == named


def test_a_custom_vocabulary_is_used_as_given() -> None:
    synonyms = {"a": ("x y", "z"), "b": ("y", "w"), "c": ("w",)}
    assert named_labels("x y", synonyms) == {"a"}  # longest: "x y" before "y"
    assert named_labels("y x", synonyms) == {"b"}
    assert named_labels("w", synonyms) == {"b", "c"}
    assert named_labels("w and z", synonyms) == {"a", "b", "c"}  # nothing names b or c alone
    assert named_labels("w and z y", synonyms) == {"a", "b"}  # "y" names b alone, so "w" means b


# --- scoring ------------------------------------------------------------------------------------------------


def test_event_scores_of_a_small_corpus_by_hand() -> None:
    scores = event_scores(
        ["a dog barking", "a dog and a cat", "silence", "a siren wailing"],
        [["dog_bark", "siren"], ["dog_bark"], ["cow_moo"], ["siren"]],
    )
    np.testing.assert_allclose(scores.recall, [0.5, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(scores.precision, [1.0, 0.5, np.nan, 1.0])
    assert scores.named[1] == {"dog_bark", "cat_meow"}
    p, r = 2.5 / 3, 0.625
    assert scores.corpus == pytest.approx(
        {"recall": r, "precision": p, "f1": 2 * p * r / (p + r), "named_fraction": 0.75}
    )
    assert scores.to_json()["precision"] == pytest.approx(p)


def test_a_corpus_that_names_nothing_has_no_precision() -> None:
    scores = event_scores(["quiet", "nothing"], [["dog_bark"], ["siren"]])
    assert scores.corpus["recall"] == 0.0 and scores.corpus["named_fraction"] == 0.0
    assert np.isnan(scores.corpus["precision"]) and np.isnan(scores.corpus["f1"])
    assert scores.to_json()["precision"] is None


def _brute_force(caption: str, synonyms: dict[str, tuple[str, ...]]) -> set[str]:
    """The definition, term by term with a regex over the whole caption (for captions of unshadowed terms)."""
    owners: dict[str, set[str]] = {}
    for label, terms in synonyms.items():
        for term in terms:
            owners.setdefault(term, set()).add(label)
    found = [labels for term, labels in owners.items() if re.search(rf"\b{re.escape(term)}\b", caption)]
    specific = {label for labels in found if len(labels) == 1 for label in labels}
    named = set(specific)
    for labels in found:
        if len(labels) > 1:
            named |= (labels & specific) or labels
    return named


def test_event_scores_agree_with_a_brute_force_computation_on_random_captions() -> None:
    synonyms = load_synonyms()
    phrase_words = {w for terms in synonyms.values() for t in terms if " " in t for w in t.split()}
    # one-word terms no phrase contains, so that matching order cannot matter
    pool = sorted({t for terms in synonyms.values() for t in terms if " " not in t} - phrase_words)
    fillers = ["and", "then", "with", "a", "quiet", "sound", "of"]
    rng = np.random.default_rng(3)
    labels_all = list(synonyms)
    captions, labels = [], []
    for _ in range(400):
        picked = [str(w) for w in rng.choice(pool, size=rng.integers(0, 4))]
        parts = [x for w in picked for x in (w, str(rng.choice(fillers)))]
        captions.append(" ".join(parts) or "silence")
        labels.append([str(x) for x in rng.choice(labels_all, size=rng.integers(1, 4), replace=False)])
    scores = event_scores(captions, labels)

    recall, precision = [], []
    for caption, present in zip(captions, labels, strict=True):
        named = _brute_force(caption, synonyms)
        hit = sum(1 for lab in named if lab in present)
        recall.append(hit / len(present))
        precision.append(hit / len(named) if named else float("nan"))
    np.testing.assert_allclose(scores.recall, recall)
    np.testing.assert_allclose(scores.precision, precision)
    defined = [p for p in precision if p == p]
    assert scores.corpus["recall"] == pytest.approx(sum(recall) / len(recall))
    assert scores.corpus["precision"] == pytest.approx(sum(defined) / len(defined))
    assert scores.corpus["named_fraction"] == pytest.approx(len(defined) / len(precision))
    assert 0.3 < scores.corpus["named_fraction"] < 1.0  # the corpus holds both kinds of caption


@pytest.mark.parametrize(
    ("captions", "labels", "message"),
    [
        (["a dog"], [["dog_bark"], ["siren"]], "1 captions but 2 label lists"),
        ([], [], "no captions to score"),
        (["a dog"], [[]], r"labels\[0\] is empty"),
        (["a dog"], [["dragon_roar"]], r"labels\[0\] has labels without synonyms: \['dragon_roar'\]"),
        ([None], [["dog_bark"]], r"captions\[0\] is a NoneType, not a string"),
    ],
)
def test_bad_scoring_inputs_are_named(captions: list, labels: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        event_scores(captions, labels)


# --- the files ----------------------------------------------------------------------------------------------


def _scene(file: str, *labels: str) -> str:
    return json.dumps(
        {"file": file, "split": "test", "events": [{"label": lab, "onset": 0.0} for lab in labels]}
    )


def test_scene_labels_maps_each_scene_id_to_its_labels(tmp_path: Path) -> None:
    path = tmp_path / "composition.jsonl"
    lines = [
        _scene("scenes/audio/mini-test-0000.flac", "siren", "dog_bark"),
        "",
        _scene("scenes/audio/x.flac", "cello"),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert scene_labels(path) == {"mini-test-0000": ["siren", "dog_bark"], "x": ["cello"]}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"file": "scenes/audio/b.flac", "events": [', r":2: not valid JSON"),
        ("[1, 2]", r":2: expected a JSON object, found list"),
        ('{"events": [{"label": "cello"}]}', r":2: 'file' must be a non-empty path string"),
        ('{"file": "b.flac", "events": []}', r":2: 'events' must be a non-empty list"),
        (
            '{"file": "b.flac", "events": [{"onset": 1}]}',
            r":2: every event must be an object with a non-empty 'label'",
        ),
        (_scene("other/a.flac", "cello"), r":2: scene 'a' again \(first on line 1\)"),
    ],
)
def test_a_malformed_composition_line_is_named(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "composition.jsonl"
    path.write_text(_scene("scenes/audio/a.flac", "siren") + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(str(path)) + message):
        scene_labels(path)


def test_a_missing_composition_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"composition\.jsonl: scene composition file not found"):
        scene_labels(tmp_path / "composition.jsonl")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[dog]", "expected a mapping of label -> list of terms"),
        ("dog_bark: dog", "dog_bark: expected a non-empty list of terms"),
        ("dog_bark: [dog, '--']", r"dog_bark: term '--' is not a word or phrase"),
        ("dog_bark: [dog, Dog]", r"dog_bark: term 'Dog' is listed twice"),
        ("dog_bark: [dog", "not valid YAML"),
    ],
)
def test_a_bad_synonyms_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "synonyms.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(str(path)) + ": " + message):
        load_synonyms(path)


def test_a_custom_synonyms_file_is_read_as_lower_case_words(tmp_path: Path) -> None:
    path = tmp_path / "synonyms.yaml"
    path.write_text("dog_bark: [Dog, Tick-Tock]\n", encoding="utf-8")
    assert load_synonyms(path) == {"dog_bark": ("dog", "tick tock")}
