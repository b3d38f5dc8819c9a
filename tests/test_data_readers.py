import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from auralign.data import readers
from auralign.errors import DataError


def _wav(path: Path, seconds: float = 0.1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(16000 * seconds), dtype=np.float32), 16000)


def test_audiocaps_groups_captions_and_handles_csv_quirks(tmp_path: Path) -> None:
    for ytid in ("abc", "def"):
        _wav(tmp_path / "audio" / f"{ytid}.wav")
    text = (
        "\ufeffaudiocap_id,youtube_id,start_time,caption\n\n"
        '1,abc,30,"A dog barks, then a car passes"\n'
        "2,abc,30,A dog barks\n"
        "3,def,0,Rain falls\n"
        "4,gone,0,Missing audio\n\n"
    )
    (tmp_path / "test.csv").write_text(text, encoding="utf-8")
    corpus = readers.read_audiocaps(tmp_path / "test.csv", tmp_path / "audio")
    by_id = {clip.id: clip for clip in corpus.clips}
    assert by_id["abc"].captions == ("A dog barks, then a car passes", "A dog barks")
    assert by_id["def"].captions == ("Rain falls",)
    assert len(corpus.missing) == 1 and corpus.missing[0].startswith(f"{tmp_path / 'audio'}/gone.*, ")
    assert "1 audio file(s) missing" in corpus.report_missing()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("audiocap_id,youtube_id,caption\n1,abc,A dog\n", "missing column(s) start_time"),
        ("audiocap_id;youtube_id;start_time;caption\n1;abc;0;A dog\n", "semicolons-delimited"),
        (
            "audiocap_id,youtube_id,start_time,caption\n1,abc,0,A dog, barking\n",
            ":2: expected 4 fields, found 5",
        ),
        ("", "empty CSV"),
    ],
)
def test_malformed_csv(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        readers.read_audiocaps(path, tmp_path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_csv_not_utf8_and_not_found(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("file_name,label\nx.wav,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not a UTF-8"):
        readers.read_labelled_csv(path)
    with pytest.raises(DataError, match="CSV file not found"):
        readers.read_clotho(tmp_path / "none.csv", tmp_path)


def test_clotho_and_audiodiffcaps(tmp_path: Path) -> None:
    _wav(tmp_path / "a b.wav")
    _wav(tmp_path / "c.wav")
    header = "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
    (tmp_path / "clotho.csv").write_text(header + '"a b.wav",one,two,three,four,"five, with comma"\n')
    corpus = readers.read_clotho(tmp_path / "clotho.csv", tmp_path)
    assert corpus.clips[0].captions[-1] == "five, with comma"
    diff = "key,s1_fn,s2_fn,caption_1,caption_2,caption_3,caption_4,caption_5\nk1,a b.wav,c.wav,x,y,z,u,v\nk2,a b.wav,no.wav,x,y,z,u,v\n"
    (tmp_path / "diff.csv").write_text(diff)
    pairs = readers.read_audiodiffcaps(tmp_path / "diff.csv", tmp_path)
    assert pairs.clips == [] and [p.id for p in pairs.pairs] == ["k1"]
    first = pairs.pairs[0]
    assert first.second == tmp_path / "c.wav" and first.captions == ("x", "y", "z", "u", "v")
    assert pairs.missing == [f"{tmp_path}/no.*"]


def test_event_folders_and_labelled_csv(tmp_path: Path) -> None:
    _wav(tmp_path / "events" / "dog" / "1.wav")
    _wav(tmp_path / "events" / "siren" / "2.flac")
    corpus = readers.read_label_folders(tmp_path / "events")
    assert sorted(c.label for c in corpus.clips) == ["dog", "siren"]
    (tmp_path / "events" / "list.csv").write_text("file_name,label,phrase\ndog/1.wav,dog,a dog barking\n")
    labelled = readers.read_labelled_csv(tmp_path / "events" / "list.csv")
    assert labelled.clips[0].meta["phrase"] == "a dog barking"
    with pytest.raises(DataError, match="no audio files"):
        readers.read_label_folders(tmp_path / "events" / "dog")


def test_vocalsound_layout(tmp_path: Path) -> None:
    for name in ("f0001_0_cough", "f0001_1_sneeze", "m0002_0_laughter"):
        _wav(tmp_path / "audio_16k" / f"{name}.wav")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "te_meta.csv").write_text("m0002\n")
    assert len(readers.read_vocalsound(tmp_path).clips) == 3
    test = readers.read_vocalsound(tmp_path, split="test")
    assert [(c.label, c.meta["speaker"]) for c in test.clips] == [("laughter", "m0002")]


def test_iemocap_layout_merges_excited(tmp_path: Path) -> None:
    evaluation = tmp_path / "Session1" / "dialog" / "EmoEvaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "Ses01F_impro01.txt").write_text(
        "% header\n"
        "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
        "[10.0 - 11.0]\tSes01F_impro01_M001\texc\t[3.0, 3.0, 3.0]\n"
        "[12.0 - 13.0]\tSes01F_impro01_M002\tfru\t[3.0, 3.0, 3.0]\n"
    )
    for utt in ("Ses01F_impro01_F000", "Ses01F_impro01_M001", "Ses01F_impro01_M002"):
        _wav(tmp_path / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / f"{utt}.wav")
    corpus = readers.read_iemocap(tmp_path, sessions=(1,))
    assert sorted((c.id, c.label) for c in corpus.clips) == [
        ("Ses01F_impro01_F000", "neu"),
        ("Ses01F_impro01_M001", "hap"),
    ]


def test_nsynth_and_gtzan_layouts(tmp_path: Path) -> None:
    nsynth = tmp_path / "nsynth-test"
    _wav(nsynth / "audio" / "bass_synthetic_033-022-050.wav")
    examples = {"bass_synthetic_033-022-050": {"instrument_family_str": "bass", "pitch": 22}}
    (nsynth / "examples.json").write_text(json.dumps(examples))
    assert readers.read_nsynth(nsynth).clips[0].label == "bass"
    (nsynth / "examples.json").write_text("{broken")
    with pytest.raises(DataError, match="broken JSON"):
        readers.read_nsynth(nsynth)
    _wav(tmp_path / "genres" / "jazz" / "jazz.00000.wav")
    assert readers.read_gtzan(tmp_path / "genres").clips[0].label == "jazz"
