"""Datasets fairseq reads: clips cropped and labelled from a manifest, the teacher's audio or its cached maps beside them, class-balanced sampling weights."""
