"""The semantic guard classifiers' trainer: the sentence encoder (distilled or exported from all-MiniLM-L6-v2), one
linear head per guard category on its features, thresholds chosen on the dev split. Writes the artifact
``guardrails/semantic.py`` loads. May use torch; the gateway never imports this package."""
