"""Semantic guards (toxicity, harmful requests, prompt injection): training data and the heads' trainer."""
