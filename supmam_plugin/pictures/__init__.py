"""Pictures people look at: training curves from fairseq logs, and a pretraining model's view of a clip."""
