"""Using a trained encoder: embeddings (:mod:`.encoder`), the portable export format written and
read in one place (:mod:`.export`), and the HEAR (:mod:`.hear`) and X-ARES (:mod:`.xares`) wrappers."""
