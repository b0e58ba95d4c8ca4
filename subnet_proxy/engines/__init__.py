"""Real ASR, TTS and summarization engines running the models shipped in PyPI wheels.

``base`` holds the interfaces, ``pool`` the bounded worker pool and the async ``Engines`` facade.
"""
