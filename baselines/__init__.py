"""Reference predictors (majority, prior, random, oracle) and published numbers with their sources."""
