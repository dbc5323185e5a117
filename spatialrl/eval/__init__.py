"""Evaluation: metrics, benchmark scorers with the official rules, the model runner, reports."""
