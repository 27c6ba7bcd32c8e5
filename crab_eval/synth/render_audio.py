"""A scene's soundtrack: each audible object plays its class's timbre and pitch pattern in its audible segments.

Deterministic: the only randomness (noise timbres, background hiss) comes from the scene's own seed. Written as
16 kHz mono 16-bit PCM WAV with soundfile (a plain RIFF header: no dates, no encoder strings).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from crab_eval.synth.config import FAMILIES, SAMPLE_RATE, ClassSpec
from crab_eval.synth.scene import Scene

# Relative amplitudes of harmonics 1, 2, 3, ... per waveform recipe.
HARMONICS: dict[str, tuple[float, ...]] = {
    "sine": (1.0,),
    "saw": (1.0, 0.5, 0.33, 0.25, 0.2, 0.16),
    "square": (1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14),
    "pluck": (1.0, 0.6, 0.3, 0.15),
    "formant": (0.3, 0.5, 1.0, 0.7, 0.2),
}
RAMP_S = 0.02  # on/off ramps avoid clicks at segment boundaries
MIX_SCALE = 0.22  # headroom: four loud objects stay below full scale
HISS = 0.004  # background noise level


def _pitch_and_amp(spec: ClassSpec, t: np.ndarray, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """Instantaneous frequency (Hz) and amplitude envelope of the class's pattern at times ``t``."""
    f0 = np.full_like(t, spec.base_hz)
    amp = np.ones_like(t)
    frac = t % 1.0  # position inside the current second: patterns repeat every segment
    if spec.pattern == "rise":
        f0 = spec.base_hz * (1.0 + 0.5 * frac)
    elif spec.pattern == "fall":
        f0 = spec.base_hz * (1.5 - 0.5 * frac)
    elif spec.pattern == "trill":
        f0 = spec.base_hz * np.where((t * 8).astype(int) % 2 == 0, 1.0, 1.26)
    elif spec.pattern == "vibrato":
        f0 = spec.base_hz * (1.0 + 0.03 * np.sin(2 * np.pi * 6 * t))
    elif spec.pattern == "pulse":
        amp = (np.sin(2 * np.pi * 4 * t) > 0).astype(np.float64) * 0.9 + 0.1
    return f0, amp


def class_tone(spec: ClassSpec, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """The class's sound over the whole clip (before on/off gating), unit-ish RMS."""
    t = np.arange(n_samples) / SAMPLE_RATE
    f0, amp = _pitch_and_amp(spec, t, n_samples / SAMPLE_RATE)
    if spec.waveform == "noise":
        # Noise shaped to a band around base_hz: FFT-domain Gaussian filter.
        noise = rng.standard_normal(n_samples)
        spectrum = np.fft.rfft(noise)
        freqs = np.fft.rfftfreq(n_samples, 1 / SAMPLE_RATE)
        spectrum *= np.exp(-0.5 * ((freqs - spec.base_hz) / (0.35 * spec.base_hz)) ** 2)
        wave = np.fft.irfft(spectrum, n_samples)
        return _unit_rms(wave * amp)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    weights = [w if spec.base_hz * h * 1.5 < SAMPLE_RATE / 2 else 0.0  # below Nyquist, also at the top of a rise
               for h, w in enumerate(HARMONICS[spec.waveform], start=1)]  # fmt: skip
    wave = np.zeros(n_samples)
    # sin(h * phase) by the recurrence sin((h+1)x) = 2 cos(x) sin(hx) - sin((h-1)x): one sine and one cosine per
    # tone instead of one sine per harmonic (the sines were the slowest step of rendering a clip).
    below, sine, two_cos = np.zeros(n_samples), np.sin(phase), 2.0 * np.cos(phase)
    for h, w in enumerate(weights, start=1):
        if h > 1:
            below, sine = sine, two_cos * sine - below
        if w:
            wave += w * sine
    if spec.waveform == "pluck":  # a decaying attack on each beat of the second
        wave *= np.exp(-6.0 * ((t * 2) % 1.0))
    return _unit_rms(wave * amp)


def _unit_rms(wave: np.ndarray) -> np.ndarray:
    # Every class is equally loud at gain 1, so an object's loudness is its gain alone ("louder" questions).
    return wave / (np.sqrt(np.mean(wave**2)) + 1e-12)


def gate(mask: np.ndarray, n_samples: int) -> np.ndarray:
    """Per-sample envelope: 1 inside the segments where ``mask`` is True, with short linear ramps."""
    seg = n_samples // len(mask)
    env = np.repeat(np.asarray(mask, np.float64), seg)
    env = np.pad(env, (0, n_samples - len(env)))
    ramp = max(1, int(RAMP_S * SAMPLE_RATE))
    # Moving average by cumulative sums (a long np.convolve is the slowest step of rendering otherwise).
    padded = np.concatenate([np.zeros(ramp // 2 + 1), env, np.zeros(ramp)])
    sums = np.cumsum(padded)
    return (sums[ramp : ramp + n_samples] - sums[:n_samples]) / ramp


def render_audio(scene: Scene) -> np.ndarray:
    """The mono float32 mixture of the scene, ``n_seconds * 16000`` samples in [-1, 1]."""
    n_samples = scene.n_seconds * SAMPLE_RATE
    rng = np.random.default_rng([scene.seed, 1])
    specs = FAMILIES[scene.family]
    mix = HISS * rng.standard_normal(n_samples)
    for obj in scene.objects:
        if obj.audible.any():
            tone = class_tone(specs[obj.cls], n_samples, rng)
            mix += MIX_SCALE * obj.gain * tone * gate(obj.audible, n_samples)
    return np.clip(mix, -1.0, 1.0).astype(np.float32)


def to_pcm16(wave: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(wave, np.float64) * 32767.0).astype(np.int16)


def write_wav(path: Path, wave: np.ndarray) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), to_pcm16(wave), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return path
