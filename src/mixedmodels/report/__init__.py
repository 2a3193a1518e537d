"""Rendering fitted models: lme4-style summary text and HTML, and JSON-ready dictionaries."""

from .serialize import results_to_dict
from .summary import Summary

__all__ = ["Summary", "results_to_dict"]
