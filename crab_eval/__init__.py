"""crab-eval: official-exact scoring, transfer tables and regression checks for audio-visual LLM benchmarks."""

__version__ = "0.1.0"
