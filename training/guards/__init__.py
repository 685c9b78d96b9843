"""The semantic guards' trainer (toxicity, harmful requests, prompt injection): training data (``data``), the
sentence encoder (distilled or exported from all-MiniLM-L6-v2), one linear head per category on its features,
thresholds chosen on the dev split, and the evaluation of every guard (``evaluate``). Writes the artifact
``guardrails/semantic.py`` loads. May use torch; the gateway never imports this package."""
