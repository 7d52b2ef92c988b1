"""The ground floor, free of fairseq: Kaldi fbank, audio reading, manifests, patch positions,
masking, the ViT encoder and checkpoint reading. Everything else stands on it; the portable
export and the harness wrappers need nothing more."""
