"""The encoder as a transformers folder, where people share audio encoders now (EAT, BEATs, M2D):

    supmam-export CHECKPOINT OUT --format transformers
    model = transformers.AutoModel.from_pretrained(OUT, trust_remote_code=True)
    extractor = transformers.AutoFeatureExtractor.from_pretrained(OUT, trust_remote_code=True)

OUT holds ``config.json`` (``auto_map`` to the remote code), ``preprocessor_config.json``,
``model.safetensors`` (the encoder's weights only: no pickle) and the remote code: three small files
written for this export (``transformers_remote/``) and the plugin's own modules they stand on
(``core/vit.py``, ``masking.py``, ``positions.py``, ``fbank.py``), copied as they are, so loading
it never imports fairseq or supmam_plugin and computes what :mod:`supmam_plugin.inference` does
(``pooler_output`` is its "clip" embedding of a clip up to one window long). A classifier's head is
not exported this way (the portable format keeps it).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil

from ..core.vit import VitEncoderConfig

REMOTE_CODE = os.path.join(os.path.dirname(__file__), "transformers_remote")
CORE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "core")
CORE_FILES = ("vit.py", "masking.py", "positions.py", "fbank.py")  # what the remote code imports, beside it
AUTO_MAP = {"AutoConfig": "configuration_supmam.SupmamAudioConfig", "AutoModel": "modeling_supmam.SupmamAudioModel",
            "AutoFeatureExtractor": "feature_extraction_supmam.SupmamFeatureExtractor"}


def write_transformers_export(checkpoint: str, out_dir: str) -> dict[str, str]:
    """Write ``out_dir`` (see the module) from any checkpoint the plugin reads; returns the paths written."""
    from safetensors.torch import save_file

    from ..core.checkpoints import read_encoder
    from ..core.file_hash import file_sha256

    found = read_encoder(checkpoint)
    arch = dataclasses.asdict(VitEncoderConfig(**found.architecture))
    os.makedirs(out_dir, exist_ok=True)
    written = {"weights": os.path.join(out_dir, "model.safetensors"), "config": os.path.join(out_dir, "config.json"),
               "preprocessor": os.path.join(out_dir, "preprocessor_config.json")}
    save_file({f"encoder.{k}": v.float().contiguous() for k, v in found.weights.items()}, written["weights"],
              metadata={"format": "pt"})
    config = {"model_type": "supmam_audio", "architectures": ["SupmamAudioModel"], "auto_map": AUTO_MAP,
              "encoder": arch, "source": {"path": os.path.abspath(checkpoint), "kind": found.kind,
                                          "sha256": file_sha256(checkpoint)}}
    preprocessor = {"feature_extractor_type": "SupmamFeatureExtractor",
                    "auto_map": {"AutoFeatureExtractor": AUTO_MAP["AutoFeatureExtractor"]},
                    "feature_size": arch["num_mel_bins"], "sampling_rate": found.sample_rate,
                    "input_frames": arch["input_frames"], "padding_value": 0.0}
    for key, content in (("config", config), ("preprocessor", preprocessor)):
        with open(written[key], "w", encoding="utf-8") as f:
            json.dump(content, f, indent=1)
            f.write("\n")
    for name in sorted(os.listdir(REMOTE_CODE)):
        if name.endswith(".py"):
            written[name] = shutil.copyfile(os.path.join(REMOTE_CODE, name), os.path.join(out_dir, name))
    for name in CORE_FILES:
        written[name] = shutil.copyfile(os.path.join(CORE, name), os.path.join(out_dir, name))
    return written
