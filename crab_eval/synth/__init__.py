"""SynthAV: a procedurally generated audio-visual suite in the official layouts, with planted transfer."""
