"""The AV-LLM: encoders, projectors, causal-LM backbone, LoRA / I-LoRA / MoE-LoRA adapters, trainer, inference."""
