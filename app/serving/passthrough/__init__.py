"""Pass-through to an upstream that serves the OpenAI API itself (see :mod:`.handlers`)."""
