"""Full-disclosure recording: waveform codec, chunking, session loading, replay, review, report, export."""
