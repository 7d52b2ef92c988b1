"""Models: the SupMAM encoder/decoder, heads, the frozen CLAP teacher and the classifier."""
