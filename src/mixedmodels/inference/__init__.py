"""Inference on fitted models: denominator df, tests, model comparison, intervals, variance partition."""
