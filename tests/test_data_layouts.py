"""The corpora laid out as their releases and the common downloaders lay them out on disk.

File names, folder structure and header lines are the real ones (AudioCaps via aac-datasets, AudioSet dumps and
audiocaps-download; Clotho converted to FLAC; AudioDiffCaps as nttcslab/audio-diff-caps synthesises it;
VocalSound's release; IEMOCAP's sessions; GTZAN's original `.au` release with the fault-filtered lists;
NSynth; AudioSet via audioset-download); the audio is short generated stand-ins.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from auralign.cli import main
from auralign.data import load_manifest, readers
from auralign.data.audiovisual import read_audioset_layout, read_segments
from auralign.data.build import build, load_build_config
from auralign.errors import ConfigError, DataError

AUDIOCAPS_HEADER = "audiocap_id,youtube_id,start_time,caption"
# (audiocap_id, youtube_id, start_time, caption): ids in AudioCaps' own style, some starting with "-"
AUDIOCAPS_ROWS = [
    (97151, "--0w1YA1Hm4", 30, "A vehicle driving as a man and woman are talking and laughing"),
    (108945, "-1nilez17Dg", 30, "Several people cheer and scream and speak as water flows"),
    (107898, "-3Kv4fdm7Uk", 30, "Wind blows and trees rustle while people talk"),
    (107899, "-3Kv4fdm7Uk", 30, "Rustling with a man speaking"),
    (105023, "0yETgW44MZU", 140, "A man speaks followed by a toilet flushing"),
]


def tone(path: Path, seconds: float = 0.2, sr: int = 16000, freq: float = 440.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)
    return path


def truncated_wav(path: Path) -> Path:
    """A WAV whose header promises more audio than the file holds (a download cut short)."""
    tone(path, seconds=0.5)
    path.write_bytes(path.read_bytes()[:2000])
    return path


def audiocaps_csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f'{a},{y},{s},"{c}"' for a, y, s, c in AUDIOCAPS_ROWS]
    path.write_text("\n".join([AUDIOCAPS_HEADER, *rows]) + "\n")
    return path


def error_of(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# --- 1. AudioCaps as the downloaders name it ----------------------------------------------------------------


@pytest.mark.parametrize(
    "layout",
    [
        "aac-datasets",  # AUDIOCAPS/audio_32000Hz/val/<youtube_id>_<start_time>.flac
        "audioset",  # Y<youtube_id>.wav
        "audiocaps-download",  # audiocaps/val/<audiocap_id>.wav, one file per caption row
    ],
)
def test_audiocaps_audio_as_the_downloaders_name_it(tmp_path: Path, layout: str) -> None:
    csv_path = audiocaps_csv(tmp_path / "val.csv")
    folder = (
        tmp_path
        / {
            "aac-datasets": "AUDIOCAPS/audio_32000Hz/val",
            "audioset": "as",
            "audiocaps-download": "audiocaps/val",
        }[layout]
    )
    for audiocap_id, ytid, start, _ in AUDIOCAPS_ROWS:
        name = {
            "aac-datasets": f"{ytid}_{start}.flac",
            "audioset": f"Y{ytid}.wav",
            "audiocaps-download": f"{audiocap_id}.wav",
        }[layout]
        if layout != "audiocaps-download" or audiocap_id != 107898:  # one caption row's file never came
            tone(folder / name)
    corpus = readers.read_audiocaps(csv_path, folder)
    by_id = {clip.id: clip for clip in corpus.clips}
    assert sorted(by_id) == sorted({ytid for _, ytid, _, _ in AUDIOCAPS_ROWS}) and corpus.missing == []
    assert by_id["-3Kv4fdm7Uk"].captions == (
        "Wind blows and trees rustle while people talk",
        "Rustling with a man speaking",
    )
    assert all(clip.path.is_file() and clip.path.parent == folder for clip in corpus.clips)


def test_audiocaps_none_found_names_what_was_tried_and_a_file_that_is_there(tmp_path: Path) -> None:
    csv_path = audiocaps_csv(tmp_path / "test.csv")
    folder = tmp_path / "audio"
    (folder / "--0w1YA1Hm4.m4a").parent.mkdir(parents=True)
    (folder / "--0w1YA1Hm4.m4a").write_bytes(b"not decodable by libsndfile")
    with pytest.raises(DataError) as error:
        readers.read_audiocaps(csv_path, folder)
    message = str(error.value)
    assert "none of the 4 clip(s)" in message and str(csv_path) in message
    for tried in ("--0w1YA1Hm4.*", "--0w1YA1Hm4_30.*", "Y--0w1YA1Hm4.*", "97151.*"):
        assert f"{folder}/{tried}" in message
    assert f"holds e.g. {folder / '--0w1YA1Hm4.m4a'}" in message


def test_audiocaps_partly_missing_lists_the_names_with_their_suffix_pattern(tmp_path: Path) -> None:
    csv_path = audiocaps_csv(tmp_path / "test.csv")
    tone(tmp_path / "audio" / "--0w1YA1Hm4_30.flac")
    corpus = readers.read_audiocaps(csv_path, tmp_path / "audio")
    assert [clip.id for clip in corpus.clips] == ["--0w1YA1Hm4"] and len(corpus.missing) == 3
    assert corpus.missing[0].startswith(f"{tmp_path / 'audio'}/-1nilez17Dg.*, ")


# --- 2. Clotho converted to FLAC, and a CSV in another encoding --------------------------------------------

CLOTHO_HEADER = "file_name,caption_1,caption_2,caption_3,caption_4,caption_5"


def test_clotho_converted_to_flac_is_found_while_the_csv_says_wav(tmp_path: Path) -> None:
    evaluation = tmp_path / "clotho" / "evaluation"
    tone(evaluation / "Santa Motor.flac")
    tone(evaluation / "Flipping through book.flac")
    (tmp_path / "clotho" / "clotho_captions_evaluation.csv").write_text(
        CLOTHO_HEADER
        + "\nSanta Motor.wav,A machine whines and squeals while rhythmically punching or stamping.,b,c,d,e\n"
        + '"Flipping through book.wav","Pages are turned, one after another.",b,c,d,e\n'
    )
    corpus = readers.read_clotho(tmp_path / "clotho" / "clotho_captions_evaluation.csv", evaluation)
    assert [c.path.name for c in corpus.clips] == ["Santa Motor.flac", "Flipping through book.flac"]
    assert [c.id for c in corpus.clips] == ["Santa Motor.wav", "Flipping through book.wav"]


def test_a_non_utf8_csv_names_the_encoding_it_likely_is(tmp_path: Path) -> None:
    text = (
        CLOTHO_HEADER
        + "\nCafé terrasse.wav,Des gens parlent à la terrasse d'un café près de la rue,b,c,d,e\n"
    )
    path = tmp_path / "clotho_captions_development.csv"
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(DataError) as error:
        readers.read_clotho(path, tmp_path)
    message = str(error.value)
    assert message.startswith(f"{path}: not a UTF-8 text file (byte 0xe9 at offset ")
    named = re.search(r"; likely (.+); re-save it as UTF-8$", message).group(1).split(" or ")
    assert "cp1252" in named and len(named) <= 4


# --- 3. AudioDiffCaps as a corpus format ---------------------------------------------------------------------

ADC_HEADER = "key,s1_fn,s2_fn,caption_1,caption_2,caption_3,caption_4,caption_5"
ADC_ROWS = [
    "adc_rain_dev_0000,adc_rain_dev_0000_s1.wav,adc_rain_dev_0000_s2.wav,lower the volume of the thunder,"
    "make the thunder quieter,reduce the sound of the thunder slightly,reduce the volume of the thunder,"
    "decrease the volume of the thunder",
    "adc_rain_dev_0001,adc_rain_dev_0001_s1.wav,adc_rain_dev_0001_s2.wav,remove sound of dog barking,"
    "remove the barking dog,remove the dog,remove the sound of the dogs barking,",
    "adc_rain_dev_0012,adc_rain_dev_0012_s1.wav,adc_rain_dev_0012_s2.wav,delete thunder,"
    "remove the sound of the thunder,remove the thunder,,",
]


def audiodiffcaps(root: Path, split: str = "dev") -> Path:
    """datasets/adc_rain/<split>/adc_rain_<split>.csv with the synthesised wav/ beside it."""
    folder = root / "datasets" / "adc_rain" / split
    folder.mkdir(parents=True)
    rows = [row.replace("_dev_", f"_{split}_") for row in ADC_ROWS]
    (folder / f"adc_rain_{split}.csv").write_text("\n".join([ADC_HEADER, *rows]) + "\n")
    for row in rows:
        for name in row.split(",")[1:3]:
            tone(folder / "wav" / name, freq=300.0 if name.endswith("s1.wav") else 500.0)
    return folder / f"adc_rain_{split}.csv"


def test_audiodiffcaps_yields_adc_manifests_and_an_evaluation_set(tmp_path: Path, capsys) -> None:
    dev, evaluation = audiodiffcaps(tmp_path, "dev"), audiodiffcaps(tmp_path, "eval")
    config = tmp_path / "adc.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'out'}\nsplits:\n"
        f"  - {{name: dev, bases: {{format: audiodiffcaps, csv: {dev}}}, adc: per_caption}}\n"
        f"  - {{name: eval, bases: {{format: audiodiffcaps, csv: {evaluation}}}, adc: per_pair}}\n"
    )
    assert main(["data", "build", str(config), "--workers", "1", "--no-progress"]) == 0
    train = load_manifest(tmp_path / "out" / "dev" / "adc.jsonl")
    assert len(train) == 5 + 4 + 3  # one sample per non-empty caption
    assert {s.task for s in train} == {"adc"}
    assert train[0].prompt == "Tell me the difference between the second audio and the first one."
    first, second = train[0].audio_paths(tmp_path / "out" / "dev")
    assert first.samefile(dev.parent / "wav" / "adc_rain_dev_0000_s1.wav")
    assert second.samefile(dev.parent / "wav" / "adc_rain_dev_0000_s2.wav")
    test = load_manifest(tmp_path / "out" / "eval" / "adc.jsonl")
    assert [s.id for s in test] == [
        "adc-adc_rain_eval_0000",
        "adc-adc_rain_eval_0001",
        "adc-adc_rain_eval_0012",
    ]
    assert test[2].references == ["delete thunder", "remove the sound of the thunder", "remove the thunder"]
    assert not (tmp_path / "out" / "dev" / "audio").exists()  # nothing rendered


@pytest.mark.parametrize(
    ("split", "problem"),
    [
        (
            "{name: d, bases: {format: audiodiffcaps, csv: x.csv}, pairs: {add: 2}}",
            "pairs: bases of format audiodiffcaps",
        ),
        (
            "{name: d, bases: {format: audiodiffcaps, csv: x.csv}, ac: per_clip}",
            "ac: bases of format audiodiffcaps",
        ),
        (
            "{name: d, bases: {format: clotho, csv: x.csv, audio_dir: a}, adc: per_pair}",
            "adc: only for bases",
        ),
    ],
)
def test_a_split_that_does_not_fit_its_corpus_is_refused(tmp_path: Path, split: str, problem: str) -> None:
    config = tmp_path / "b.yaml"
    config.write_text(f"out_dir: {tmp_path / 'out'}\nsplits:\n  - {split}\n")
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_build_config(config)


# --- 4. VocalSound's meta/*_meta.json --------------------------------------------------------------------


def vocalsound(root: Path) -> Path:
    """vs_release_16k: audio_16k/<speaker>_<n>_<label>.wav and meta/{tr,val,te}_meta.json."""
    release = root / "vs_release_16k"
    for name in ("f0003_0_cough", "f0003_0_sniff", "m0005_0_laughter", "m0005_1_sigh", "f0101_0_sneeze"):
        tone(release / "audio_16k" / f"{name}.wav")
    (release / "meta").mkdir()
    # [spk_id, gender, age, country, native language, health condition], as the README describes the rows
    rows = {
        "tr": [["f0003", "Female", "27", "China", "Chinese", "no"]],
        "te": [["m0005", "Male", "31", "USA", "English", "no"]],
    }
    rows["val"] = [["f0101", "Female", "44", "India", "Hindi", "no"]]
    for prefix, speakers in rows.items():
        (release / "meta" / f"{prefix}_meta.json").write_text(json.dumps(speakers))
    return release


def test_vocalsound_splits_from_its_meta_json(tmp_path: Path) -> None:
    release = vocalsound(tmp_path)
    test = readers.read_vocalsound(release, "test")
    assert [(c.id, c.label) for c in test.clips] == [
        ("m0005_0_laughter", "laughter"),
        ("m0005_1_sigh", "sigh"),
    ]
    assert [c.id for c in readers.read_vocalsound(release, "train").clips] == [
        "f0003_0_cough",
        "f0003_0_sniff",
    ]
    (release / "meta" / "val_meta.json").write_text(json.dumps({"f0101": {"gender": "Female"}}))
    assert [c.id for c in readers.read_vocalsound(release, "val").clips] == ["f0101_0_sneeze"]


def test_vocalsound_datafiles_when_meta_is_absent_and_the_error_when_neither_is(tmp_path: Path) -> None:
    release = vocalsound(tmp_path)
    for path in (release / "meta").iterdir():
        path.unlink()
    (release / "datafiles").mkdir()
    data = {"data": [{"wav": "/data/sls/vocalsound/audio_16k/m0005_1_sigh.wav", "labels": "/m/vs_sigh"}]}
    (release / "datafiles" / "te.json").write_text(json.dumps(data))
    assert [c.id for c in readers.read_vocalsound(release, "test").clips] == [
        "m0005_0_laughter",
        "m0005_1_sigh",
    ]
    with pytest.raises(DataError) as error:
        readers.read_vocalsound(release, "val")
    assert f"tried {release / 'meta' / 'val_meta.json'}, {release / 'meta' / 'val_meta.csv'}" in str(
        error.value
    )


# --- 5. IEMOCAP by sessions -------------------------------------------------------------------------------


def iemocap(root: Path) -> Path:
    release = root / "IEMOCAP_full_release"
    for session in range(1, 6):
        dialog = f"Ses0{session}F_impro01"
        evaluation = release / f"Session{session}" / "dialog" / "EmoEvaluation"
        evaluation.mkdir(parents=True)
        (evaluation / f"{dialog}.txt").write_text(
            "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
            f"[6.2901 - 8.2357]\t{dialog}_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
            f"C-E2:\tNeutral;\t()\n"
            f"[10.0100 - 11.3925]\t{dialog}_M001\texc\t[3.5000, 3.0000, 3.0000]\n"
        )
        for utt in ("F000", "M001"):
            tone(release / f"Session{session}" / "sentences" / "wav" / dialog / f"{dialog}_{utt}.wav")
    return release


def test_iemocap_split_by_sessions(tmp_path: Path, capsys) -> None:
    release = iemocap(tmp_path)
    config = tmp_path / "b.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'out'}\nabilities:\n"
        f"  - {{format: iemocap, path: {release}, split: test}}\n"
        f"  - {{format: iemocap, path: {release}, split: train}}\n"
    )
    assert main(["data", "build", str(config), "--no-progress"]) == 0
    test = load_manifest(tmp_path / "out" / "abilities" / "ser-test.jsonl")
    assert sorted(s.id for s in test) == ["ser-Ses05F_impro01_F000", "ser-Ses05F_impro01_M001"]
    assert [s.label for s in test] == ["neu", "hap"]
    train = load_manifest(tmp_path / "out" / "abilities" / "ser-train.jsonl")
    assert len(train) == 8 and not any("Ses05" in s.id for s in train)
    config.write_text(
        f"out_dir: {tmp_path / 'out'}\nabilities:\n  - {{format: iemocap, path: {release}, split: dev}}\n"
    )
    assert main(["data", "build", str(config)]) == 2
    assert "abilities.0: Value error, split: format iemocap has splits train, test, not 'dev'" in error_of(
        capsys
    )


# --- 6. GTZAN's .au release and the fault-filtered lists ----------------------------------------------------


def gtzan(root: Path) -> Path:
    """gtzan/genres/<genre>/<genre>.000NN.au (22050 Hz, as released) and the lists beside genres/."""
    genres = root / "gtzan" / "genres"
    for genre, n in (("blues", 0), ("blues", 29), ("jazz", 54), ("rock", 9)):
        tone(genres / genre / f"{genre}.{n:05d}.au", sr=22050)
    (root / "gtzan" / "train_filtered.txt").write_text("blues/blues.00029.wav\njazz/jazz.00054.wav\n")
    (root / "gtzan" / "test_filtered.txt").write_text("blues/blues.00000.wav\nrock/rock.00009.wav\n")
    return genres


def test_gtzan_original_au_release_with_and_without_the_filtered_lists(tmp_path: Path) -> None:
    genres = gtzan(tmp_path)
    everything = readers.read_gtzan(genres)
    assert sorted(c.label for c in everything.clips) == ["blues", "blues", "jazz", "rock"]
    test = readers.read_gtzan(genres, "test")
    assert [(c.id, c.label, c.path.name) for c in test.clips] == [
        ("blues/blues.00000.wav", "blues", "blues.00000.au"),
        ("rock/rock.00009.wav", "rock", "rock.00009.au"),
    ]
    with pytest.raises(
        DataError, match=r"no split list; tried .*valid_filtered\.txt and .*valid_filtered\.txt"
    ):
        readers.read_gtzan(genres, "valid")


def test_gtzan_known_corrupt_clip_is_skipped_or_refused_under_on_bad_audio(tmp_path: Path, capsys) -> None:
    genres = gtzan(tmp_path)
    (genres / "jazz" / "jazz.00054.au").unlink()  # genres_original/'s known-bad file, as a cut-short WAV
    truncated_wav(genres / "jazz" / "jazz.00054.wav")
    config = tmp_path / "b.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'out'}\nabilities:\n  - {{format: gtzan, path: {genres}, split: train}}\n"
    )
    assert main(["data", "build", str(config), "--no-progress"]) == 2
    err = error_of(capsys)
    assert "jazz.00054.wav: truncated" in err and "on_bad_audio: skip" in err
    assert not (tmp_path / "out" / "abilities" / "mgc-train.jsonl").exists()
    config.write_text(config.read_text() + "on_bad_audio: skip\n")
    assert main(["data", "build", str(config), "--no-progress"]) == 0
    assert [s.id for s in load_manifest(tmp_path / "out" / "abilities" / "mgc-train.jsonl")] == [
        "mgc-blues/blues.00029.wav"
    ]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary["abilities"]["mgc-train"]["skipped"]) == 1
    assert "jazz.00054.wav" in summary["abilities"]["mgc-train"]["skipped"][0]
    assert "skipped: 1 (e.g. " in capsys.readouterr().out


def test_vocalsound_corrupt_clip_named_in_the_build_error(tmp_path: Path, capsys) -> None:
    release = vocalsound(tmp_path)
    truncated_wav(release / "audio_16k" / "m0005_1_sigh.wav")
    config = tmp_path / "b.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'out'}\nabilities:\n  - {{format: vocalsound, path: {release}, split: test}}\n"
    )
    assert main(["data", "build", str(config), "--no-progress"]) == 2
    assert "m0005_1_sigh.wav: truncated WAV" in error_of(capsys)


# --- 7. AudioSet downloads in label folders; spreadsheet-saved segment CSVs ---------------------------------

SEGMENTS_HEAD = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=22160, num_segs=22160, num_unique_labels=527, num_positive_labels=52882\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


def test_audioset_download_in_label_folders_is_found(tmp_path: Path) -> None:
    segments = tmp_path / "balanced_train_segments.csv"
    segments.write_text(
        SEGMENTS_HEAD
        + '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/t/dd00088"\n-0DdlOuIFUI, 50.000, 60.000, "/m/0bt9lr"\n'
    )
    tone(
        tmp_path / "audio" / "Speech" / "--PJHxphWEs_30.0-40.0.wav"
    )  # audioset-download: <label>/<id>_<start>-<end>
    tone(tmp_path / "audio" / "Dog" / "-0DdlOuIFUI_50.0-60.0.wav")
    for vid, start, end in (("--PJHxphWEs", 30.0, 40.0), ("-0DdlOuIFUI", 50.0, 60.0)):
        image = tmp_path / "frames" / f"{vid}_{start}-{end}" / "000.jpg"
        image.parent.mkdir(parents=True)
        image.write_bytes(b"jpeg")
    samples = read_audioset_layout(segments, tmp_path / "audio", tmp_path / "frames")
    assert [(s.id, s.audio.parent.name, s.audio.name) for s in samples] == [
        ("--PJHxphWEs_30", "Speech", "--PJHxphWEs_30.0-40.0.wav"),
        ("-0DdlOuIFUI_50", "Dog", "-0DdlOuIFUI_50.0-60.0.wav"),
    ]


@pytest.mark.parametrize(
    ("row", "shown"),
    [
        ('#NAME?,30,40,"/m/09x0r"', "'#NAME?'"),  # "-0DdlOuIFUI" taken for a formula
        ('"=""-0DdlOuIFUI""",30,40,"/m/0bt9lr"', "'=\"-0DdlOuIFUI\"'"),  # kept as text with a formula
        ("'--PJHxphWEs,30,40,/m/09x0r", '"\'--PJHxphWEs"'),  # kept as text with an apostrophe
    ],
)
def test_a_segments_csv_saved_by_a_spreadsheet_is_named_not_read_as_comments(
    tmp_path: Path, row: str, shown: str
) -> None:
    path = tmp_path / "balanced_train_segments.csv"
    path.write_text(SEGMENTS_HEAD + "vid1,10,20,/m/09x0r\n" + row + "\n")
    with pytest.raises(DataError) as error:
        read_segments(path)
    assert str(error.value).startswith(
        f"{path}:5: {shown} is not a video id: a spreadsheet re-saved this file"
    )


# --- 8. zero clips found is an error --------------------------------------------------------------------------


def test_nsynth_with_all_audio_missing_is_an_error_naming_what_was_tried(tmp_path: Path, capsys) -> None:
    nsynth = tmp_path / "nsynth-test"
    examples = {
        "bass_synthetic_033-022-050": {
            "instrument_family_str": "bass",
            "pitch": 22,
            "note_str": "bass_synthetic_033-022-050",
        },
        "guitar_acoustic_010-066-100": {
            "instrument_family_str": "guitar",
            "pitch": 66,
            "note_str": "guitar_acoustic_010-066-100",
        },
    }
    (nsynth / "audio").mkdir(parents=True)
    (nsynth / "examples.json").write_text(json.dumps(examples))
    (nsynth / "audio" / "README.txt").write_text("audio goes here\n")
    config = tmp_path / "b.yaml"
    config.write_text(f"out_dir: {tmp_path / 'out'}\nabilities:\n  - {{format: nsynth, path: {nsynth}}}\n")
    assert main(["data", "build", str(config), "--no-progress"]) == 2
    err = error_of(capsys)
    assert (
        "nsynth: none of the 2 clip(s)" in err and f"{nsynth / 'audio'}/bass_synthetic_033-022-050.*" in err
    )
    assert f"holds e.g. {nsynth / 'audio' / 'README.txt'}" in err
    assert not (tmp_path / "out" / "abilities").exists()


def test_audioset_layout_with_skip_missing_and_nothing_found_is_an_error(tmp_path: Path, capsys) -> None:
    segments = tmp_path / "eval_segments.csv"
    segments.write_text(SEGMENTS_HEAD + '--4gqARaEJE, 0.000, 10.000, "/m/068hy"\n')
    tone(tmp_path / "audio" / "other.wav")
    (tmp_path / "frames").mkdir()
    out = tmp_path / "av.jsonl"
    args = ["data", "av-manifest", str(segments), str(tmp_path / "audio"), str(tmp_path / "frames"), str(out)]
    assert main([*args, "--skip-missing"]) == 2
    err = error_of(capsys)
    assert "none of the 1 segment(s)" in err and "--4gqARaEJE_0-10.*" in err
    assert f"holds e.g. {tmp_path / 'audio' / 'other.wav'}" in err and not out.exists()


# --- 10. and issue 15: configs and metadata of the wrong shape ----------------------------------------------


def test_a_build_config_with_only_abilities_is_valid(tmp_path: Path) -> None:
    release = vocalsound(tmp_path)
    config = tmp_path / "b.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'out'}\nabilities:\n  - {{format: vocalsound, path: {release}}}\n"
    )
    summary = build(load_build_config(config), progress=False)
    assert summary["splits"] == {} and summary["abilities"]["vsc"]["samples"] == 5
    assert len(load_manifest(tmp_path / "out" / "abilities" / "vsc.jsonl")) == 5


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("splits: []\n", "nothing to build: give splits, abilities or both"),
        (
            "splits:\n  - {name: test, bases: {format: clotho, csv: a.csv, audio_dir: a}}\n"
            "  - {name: test, bases: {format: clotho, csv: b.csv, audio_dir: b}}\n",
            "splits: Value error, split name 'test' given twice (splits 0 and 1)",
        ),
        (
            "abilities:\n  - {format: nsynth, path: a}\n  - {format: nsynth, path: b}\n",
            "two items write abilities/mic.jsonl",
        ),
        ("abilities:\n  - {format: nsynth, path: a, split: test}\n", "split: format nsynth has no splits"),
        (
            "splits:\n  - {name: test, bases: {format: clotho, csv: a.csv, audio_dir: a}}\n"
            "mixes:\n  m: {split: train, weights: {ac: 1}, size: 4}\n",
            "mixes.m.split: no split named 'train'",
        ),
    ],
)
def test_build_configs_that_cannot_be_built_are_one_line_each(
    tmp_path: Path, text: str, problem: str, capsys
) -> None:
    config = tmp_path / "b.yaml"
    config.write_text(f"out_dir: {tmp_path / 'out'}\n{text}")
    assert main(["data", "build", str(config)]) == 2
    err = error_of(capsys)
    assert str(config) in err and problem in err and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("tasks", "problem"),
    [
        ([{"prompt": "Which one?"}], "task 0 has no 'task'"),
        ({"task": "beeps", "prompt": "Which one?"}, "expected a list of tasks, found a JSON object"),
        ([{"task": "beeps"}], "task 0 has no 'prompt'"),
    ],
)
def test_a_mini_tasks_json_of_the_wrong_shape_names_the_file(
    tmp_path: Path, tasks, problem: str, capsys
) -> None:
    (tmp_path / "abilities").mkdir()
    (tmp_path / "abilities" / "tasks.json").write_text(json.dumps(tasks))
    config = tmp_path / "b.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'out'}\nabilities:\n  - {{format: mini, path: {tmp_path / 'abilities'}}}\n"
    )
    assert main(["data", "build", str(config)]) == 2
    assert f"{tmp_path / 'abilities' / 'tasks.json'}: {problem}" in error_of(capsys)


def test_an_nsynth_examples_json_list_names_the_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "nsynth-test").mkdir()
    (tmp_path / "nsynth-test" / "examples.json").write_text(
        json.dumps([{"note_str": "bass_synthetic_033-022-050"}])
    )
    config = tmp_path / "b.yaml"
    config.write_text(
        f"out_dir: {tmp_path / 'out'}\nabilities:\n  - {{format: nsynth, path: {tmp_path / 'nsynth-test'}}}\n"
    )
    assert main(["data", "build", str(config)]) == 2
    expected = "examples.json: expected an object mapping note names to their attributes, found a JSON array"
    assert expected in error_of(capsys)
