"""Official-size scoring inputs, one module per task family: ``build(root, seed) -> [(task, data, split, preds)]``."""
