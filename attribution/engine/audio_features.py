"""A classical audio embedding for the black-box second opinion (methods/audio_similarity.py).

The paper's black-box baselines embed 10 s windows with CLAP and CLEWS (Sec. 3.3); neither
model's weights can be fetched by the platform, so the embedding here is MFCC and chroma
statistics, computed with torch and torchaudio's filter banks alone:

    frames    STFT power spectrum, Hann window of n_fft ~ 46 ms (a power of two), hop n_fft/4
    timbre    MFCC 1..19 (log mel power, 40 mel bands, orthonormal DCT-II; MFCC 0, the
              loudness, is left out) per frame
    pitch     chroma: each frame's power above 27.5 Hz summed into the 12 pitch classes of
              its frequency bins (A4 = 440 Hz), scaled to sum to 1 (loudness-free)
    window    [mean, std] over the frames inside the window, of timbre (38 numbers) and of
              pitch (24), each group scaled to unit length; the embedding is their
              concatenation divided by sqrt 2, so the cosine of two windows is the mean of
              their timbre cosine and their pitch cosine

Windows of `window` samples every `hop` samples cover the track (the last window ends at
its end); a track shorter than one window is one window. Everything is float64 on CPU.
"""

from __future__ import annotations

import math

import torch

MEL_BANDS = 40
MFCC_COEFFICIENTS = 20  # 0..19; 0 is dropped
LOWEST_PITCH_HZ = 27.5


def fft_size(sample_rate: int) -> int:
    """The power of two nearest 46 ms of audio (2048 at 44.1 kHz), at least 16."""
    return max(16, 2 ** round(math.log2(0.046 * sample_rate)))


def window_geometry(
    sample_size: int, sample_rate: int, window_share: float, hop_share: float
) -> tuple[int, int]:
    """(window, hop) in samples: shares of the model's window (config.audio_window_share),
    the window at least one FFT frame."""
    window = max(fft_size(sample_rate), round(window_share * sample_size))
    hop = max(1, round(hop_share * sample_size))
    return window, hop


def _pitch_classes(n_fft: int, sample_rate: int) -> torch.Tensor:
    """(F, 12) float64: 1 where frequency bin f belongs to a pitch class (bins under 27.5 Hz
    belong to none)."""
    frequencies = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft  # (F,)
    matrix = torch.zeros(frequencies.shape[0], 12, dtype=torch.float64)
    audible = frequencies >= LOWEST_PITCH_HZ
    midi = 69 + 12 * torch.log2(frequencies[audible] / 440.0)
    classes = torch.remainder(torch.round(midi), 12).long()
    matrix[audible.nonzero()[:, 0], classes] = 1.0
    return matrix


def frame_features(audio: torch.Tensor, sample_rate: int) -> tuple[torch.Tensor, int]:
    """Per-frame (timbre (M, 19), pitch (M, 12)) of mono audio (T,), and the hop in samples.
    Audio shorter than one frame is zero-padded to it."""
    import torchaudio.functional as AF

    n_fft = fft_size(sample_rate)
    hop = n_fft // 4
    signal = audio.double()
    if signal.shape[0] < n_fft:
        signal = torch.nn.functional.pad(signal, (0, n_fft - signal.shape[0]))
    spectrum = torch.stft(
        signal, n_fft, hop_length=hop, window=torch.hann_window(n_fft, dtype=torch.float64),
        center=False, return_complex=True,
    )  # fmt: skip  # (F, M)
    power = spectrum.abs().pow(2).T  # (M, F)
    mel = AF.melscale_fbanks(
        n_fft // 2 + 1, 0.0, sample_rate / 2, MEL_BANDS, sample_rate
    ).double()  # (F, MEL_BANDS)
    log_mel = 10 * torch.log10((power @ mel).clamp_min(1e-10))  # (M, MEL_BANDS)
    dct = AF.create_dct(MFCC_COEFFICIENTS, MEL_BANDS, norm="ortho").double()  # (MEL, 20)
    timbre = (log_mel @ dct)[:, 1:]  # (M, 19)
    pitch = power @ _pitch_classes(n_fft, sample_rate)  # (M, 12)
    pitch = pitch / pitch.sum(dim=1, keepdim=True).clamp_min(1e-12)  # (M, 12)
    return (timbre, pitch), hop


def _unit(rows: torch.Tensor) -> torch.Tensor:
    return rows / rows.norm(dim=1, keepdim=True).clamp_min(1e-12)


def window_embeddings(audio: torch.Tensor, sample_rate: int, window: int, hop: int) -> torch.Tensor:
    """Unit-length embeddings of the windows of a (C, T) track (downmixed to mono): (W, 62)."""
    mono = audio.double().mean(dim=0)  # (T,)
    (timbre, pitch), frame_hop = frame_features(mono, sample_rate)
    frames = timbre.shape[0]
    n_fft = fft_size(sample_rate)
    length = max(mono.shape[0], n_fft)
    starts = list(range(0, max(1, length - window + 1), hop))
    if starts[-1] + window < length:  # the last window ends at the track's end
        starts.append(length - window)
    rows = []
    for start in starts:
        first = math.ceil(start / frame_hop)
        # frames wholly inside [start, start + window); at least one
        last = max(first + 1, (start + window - n_fft) // frame_hop + 1)
        first, last = min(first, frames - 1), min(last, frames)
        parts = []
        for values in (timbre, pitch):
            inside = values[first:last]  # (m, d)
            stats = torch.cat([inside.mean(dim=0), inside.std(dim=0, correction=0)])  # (2d,)
            parts.append(_unit(stats[None])[0])
        rows.append(torch.cat(parts) / math.sqrt(2))  # (62,)
    return torch.stack(rows)  # (W, 62)


def best_window_similarity(query: torch.Tensor, item: torch.Tensor) -> float:
    """All-against-all: the largest cosine between a query window and an item window,
    (Wq, E) x (Wi, E) -> scalar (Sec. 3.3)."""
    return float((query @ item.T).max())
