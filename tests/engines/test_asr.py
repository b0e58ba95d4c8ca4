"""Whisper transcription on the shipped tiny.en model: round trip, timestamps, chunking, languages, load errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import jiwer
import numpy as np
import pytest

from protocol import DecodedAudio, decode_audio, encode_audio
from subnet_proxy.config import EngineSettings
from subnet_proxy.engines import EngineInputError, ModelLoadError, WhisperTranscriber
from subnet_proxy.engines.asr import chunk_bounds
from subnet_proxy.rewards.transcription import MIN_WORD_PROBABILITY

SENTENCE = "The old lighthouse keeper walked down to the harbor every morning to count the boats."
SECOND = "In the evening he wrote letters to his sister, who lived far away in the mountains."


def _normalize(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def _speech(engines, text: str, rate: int = 16_000) -> np.ndarray:
    return engines.synthesizer.synthesize(text, sample_rate=rate).samples


def _count_encodes(patch: pytest.MonkeyPatch, model) -> list[object]:
    """One entry per window ``model`` encodes from now on (while ``patch`` holds)."""
    encoded: list[object] = []
    patch.setattr(model, "encode", lambda features, encode=model.encode: encoded.append(1) or encode(features))
    return encoded


def test_chunk_bounds_cover_the_audio_and_cut_at_quiet_points():
    rate = 1_000
    loud = np.ones(100 * rate, dtype=np.float32)
    loud[57_000:57_100] = 0.0  # the only quiet window in the search region before 60 s
    bounds = chunk_bounds(loud, rate, chunk_s=60)
    assert bounds[0][0] == 0 and bounds[-1][1] == len(loud)
    assert all(a_end == b_start for (_, a_end), (b_start, _) in itertools.pairwise(bounds))
    assert all(end - start <= 60 * rate for start, end in bounds)
    assert 57_000 <= bounds[0][1] <= 57_100


def test_short_audio_is_one_chunk():
    assert chunk_bounds(np.zeros(10), 16_000, chunk_s=30) == [(0, 10)]


@pytest.mark.slow
async def test_tts_to_asr_round_trip_is_accurate(engines):
    speech = engines.synthesizer.synthesize(SENTENCE)  # the voice's own 22.05 kHz: the ASR resamples
    audio = decode_audio(encode_audio(speech.samples, speech.sample_rate, "flac"))
    transcript = await engines.transcribe(audio, "en")
    assert jiwer.wer(_normalize(SENTENCE), _normalize(transcript.text)) < 0.15
    assert transcript.language == "en"


@pytest.mark.slow
def test_segments_are_ordered_with_timestamps(engines):
    gap = np.zeros(16_000, dtype=np.float32)
    samples = np.concatenate([_speech(engines, SENTENCE), gap, _speech(engines, SECOND)])
    transcript = engines.transcriber.transcribe(DecodedAudio(samples, 16_000, "wav"))
    segments = transcript.segments
    assert len(segments) >= 2
    assert all(s.start < s.end for s in segments)
    assert segments[0].start < 1.0 and segments[-1].start > 4.0  # the second sentence starts after ~5 s
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(segments))
    assert segments[-1].end <= len(samples) / 16_000  # never past the end of the audio
    assert transcript.text == " ".join(s.text for s in segments)
    assert "sister" in transcript.text.lower()


@pytest.mark.slow
def test_long_audio_is_chunked_with_absolute_timestamps(engines):
    """With 30 s chunks, speech at 33 s must come back stamped near 33 s, not near 3 s."""
    transcriber = WhisperTranscriber(EngineSettings(asr_chunk_s=30, asr_beam_size=1))
    first, second = _speech(engines, SENTENCE), _speech(engines, SECOND)
    silence = np.zeros(33 * 16_000 - len(first), dtype=np.float32)
    samples = np.concatenate([first, silence, second])
    transcript = transcriber.transcribe(DecodedAudio(samples, 16_000, "wav"))
    late = [s for s in transcript.segments if "sister" in s.text.lower()]
    assert late and late[0].start >= 30.0
    assert "harbor" in transcript.text.lower()


@pytest.mark.slow
def test_words_read_against_long_audio_are_heard_in_their_own_window(engines):
    """Two sentences 33 s apart: the spoken words read against the audio are heard (a word or so aside); a
    changed word is not, wherever it falls; words after the last sentence are not. Read both ways: against
    the one window the reference transcript encoded (its VAD left 11 s of speech), and, once that window
    is handed out, window by window along the transcript (two Whisper windows)."""
    first, second = _speech(engines, SENTENCE), _speech(engines, SECOND)
    samples = np.concatenate([first, np.zeros(33 * 16_000 - len(first), dtype=np.float32), second])
    audio = DecodedAudio(samples, 16_000, "wav")
    transcriber = engines.transcriber
    heard = transcriber.reference_transcript(audio)
    truth = _normalize(f"{SENTENCE} {SECOND}").split()  # the validator's own words may be wrong: the truth is not
    late, early = truth.index("sister"), truth.index("harbor")
    changed = [("zebra" if i in (late, early) else w) for i, w in enumerate(truth)]
    padded = truth + "and then the dog ate my homework".split()
    heard_words = [_normalize(s.text).split() for s in heard.segments]
    with pytest.MonkeyPatch.context() as patch:
        encoded = _count_encodes(patch, transcriber._model)
        in_one = transcriber.word_probabilities(audio, heard, heard_words, [truth, changed, padded])
        assert encoded == []  # the reference's window, not encoded again
        by_window = transcriber.word_probabilities(audio, heard, heard_words, [truth, changed, padded])
        assert len(encoded) == 2  # the memo handed its window out once: now each window of the audio
    unheard = MIN_WORD_PROBABILITY
    for read in (in_one, by_window):
        spoken = sum(p < unheard for p in read[0])
        # Piper reads differently each time: a word or so near the threshold either way, never many
        assert spoken <= 0.1 * len(truth), list(zip(truth, read[0], strict=True))
        assert read[1][late] < 0.1 and read[1][early] < 0.1, (read[1][late], read[1][early])  # spoken words: ~0.9
        assert sum(p < unheard for p in read[1]) >= spoken + 1
        assert sum(p < unheard for p in read[2][len(truth):]) >= 5


@pytest.mark.slow
def test_a_reference_whose_padding_got_a_window_of_its_own_keeps_its_first(engines, monkeypatch):
    """With word timestamps, Whisper takes up a window whose text does not end on a lone timestamp again
    from its last word, so the VAD padding after it is encoded as a window of its own (now and then, on
    some sentences). Forced here for every window: the speech was all in the first, so the answers are
    read against that one, nothing is encoded again, the truth is heard and a changed word is not."""
    from faster_whisper.transcribe import WhisperModel

    split = WhisperModel._split_segments_by_timestamps
    monkeypatch.setattr(WhisperModel, "_split_segments_by_timestamps",
                        lambda self, *args, **kwargs: (*split(self, *args, **kwargs)[:2], False))
    transcriber = engines.transcriber
    transcriber.load()
    encoded = _count_encodes(monkeypatch, transcriber._model)
    audio = DecodedAudio(_speech(engines, SENTENCE), 16_000, "wav")
    heard = transcriber.reference_transcript(audio, "en")
    assert len(encoded) >= 2  # the speech's window, then the padding after its last word
    encoded.clear()
    truth = _normalize(SENTENCE).split()
    changed = ["zebra" if word == "harbor" else word for word in truth]
    read = transcriber.word_probabilities(audio, heard, [_normalize(s.text).split() for s in heard.segments],
                                          [truth, changed])
    assert encoded == []
    assert sum(p < MIN_WORD_PROBABILITY for p in read[0]) <= 1, list(zip(truth, read[0], strict=True))
    assert read[1][truth.index("harbor")] < 0.1


@pytest.mark.slow
def test_silence_gives_an_empty_transcript(engines):
    transcript = engines.transcriber.transcribe(DecodedAudio(np.zeros(3 * 16_000, np.float32), 16_000, "wav"))
    assert transcript.text == "" and transcript.segments == ()


@pytest.mark.slow
def test_language_option(engines):
    audio = DecodedAudio(_speech(engines, "Good morning."), 16_000, "wav")
    assert engines.transcriber.transcribe(audio, "en-US").language == "en"
    with pytest.raises(EngineInputError, match="'fr' is not supported"):
        engines.transcriber.transcribe(audio, "fr")


def test_missing_model_folder_names_the_path(tmp_path: Path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError) as err:
        WhisperTranscriber(EngineSettings(asr_model=str(missing), device="cpu")).load()
    assert str(missing) in str(err.value) and err.value.source == str(missing)


def test_corrupt_model_names_the_path(tmp_path: Path):
    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ModelLoadError, match="cannot load Whisper model") as err:
        WhisperTranscriber(EngineSettings(asr_model=str(tmp_path), device="cpu")).load()
    assert err.value.source == str(tmp_path)


def test_model_name_not_cached_is_not_downloaded():
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache") as err:
        WhisperTranscriber(EngineSettings(asr_model="large-v3", device="cpu")).load()
    assert err.value.source == "large-v3"


@pytest.mark.slow
def test_short_clips_share_one_window_and_keep_their_own_words(engines, monkeypatch):
    """Scoring's ``transcribe_many``: three readings in one Whisper window, each text its own.

    Piper samples its speech (no two readings alike), and now and then Whisper runs the end of one clip
    into the next one's segment; such a window is rightly read again clip by clip. Each try is a fresh
    reading: every try must keep each text its own, and one of three must have shared the window.

    "Its own": as many words as its text, give or take 2 (a phrase moved between clips adds or takes
    away words), and within 0.3 WER of it. tiny.en mishears some readings of SECOND by itself, read
    alone as packed ("who lived" as "will it": 3 words of 16, 0.19, in 3 readings of 40), and a
    shared window moves a word or two against the same clip read alone (at most 0.2 in 40); the
    shortest text moved into the longest is 0.31."""
    texts = (SENTENCE, SECOND, "Good morning to you all.")
    alone = engines.transcriber._alone
    read_alone: list[int] = []
    monkeypatch.setattr(engines.transcriber, "_alone",
                        lambda clip, code: read_alone.append(clip.size) or alone(clip, code))
    for _ in range(3):
        read_alone.clear()
        heard = engines.transcriber.transcribe_many([_speech(engines, t) for t in texts], "en")
        for text, words in zip(texts, map(_normalize, heard), strict=True):
            assert abs(len(words.split()) - len(text.split())) <= 2 and jiwer.wer(_normalize(text), words) < 0.3, heard
        if not read_alone:
            break
    else:
        pytest.fail("the packing was distrusted in three readings out of three")
