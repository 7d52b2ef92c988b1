"""Audio data: manifests, reading, Kaldi fbank, datasets."""
