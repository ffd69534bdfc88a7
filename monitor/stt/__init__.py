"""Speech to text: VAD, utterance policy, the Whisper model and its worker thread."""
