"""The model options that choose and set up a teacher (``model.teacher=...``)."""
from dataclasses import dataclass, field

from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ..core.checkpoints.legacy import TEACHER_ALIASES
from . import checkpoint_encoder, laion_clap, trained_clap, transformers_clap  # noqa: F401  registers the teachers
from .teacher import INTERPOLATIONS, TEACHERS

TEACHER_CHOICES = ChoiceEnum(sorted(TEACHERS) + sorted(TEACHER_ALIASES))  # old names stay readable
CLAP_FEATURE_CHOICES = ChoiceEnum(list(laion_clap.FEATURES))
CLAP_FRONT_END_CHOICES = ChoiceEnum(list(transformers_clap.FRONT_ENDS))


@dataclass
class TeacherConfig(FairseqDataclass):
    teacher: TEACHER_CHOICES = field(
        default="laion_clap",
        metadata={"help": "the frozen teacher of model.target=teacher: 'laion_clap' (LAION-CLAP's HTS-AT, the "
                  "paper's; hears 10 s at 48 kHz) or 'checkpoint_encoder' (the encoder of a plugin checkpoint, "
                  "pretraining or fine-tuned classifier, or of an AudioMAE .pth; hears what it was trained on; "
                  "'supmam' is its old name)"},
    )
    teacher_checkpoint: str = field(
        default="",
        metadata={"help": "the teacher's weights: laion_clap: a released LAION-CLAP .pt (e.g. "
                  "630k-audioset-best.pt), a transformers CLAP folder (config.json + model.safetensors, e.g. "
                  "laion/clap-htsat-unfused), or 'random' (a randomly initialised HTS-AT: tests only, meaningless "
                  "targets); checkpoint_encoder: a .pt of this plugin or an AudioMAE .pth"},
    )
    clap_model: str = field(
        default="HTSAT-tiny",
        metadata={"help": "laion_clap: the audio model config of the checkpoint, HTSAT-tiny (630k-*.pt) or "
                  "HTSAT-base (music_speech_*.pt)"},
    )
    clap_feature: CLAP_FEATURE_CHOICES = field(
        default="tokens",
        metadata={"help": "laion_clap: 'tokens' (HTS-AT's last-stage token map) or 'projected' (the same tokens "
                  "through CLAP's audio projection, 512 wide)"},
    )
    clap_front_end: CLAP_FRONT_END_CHOICES = field(
        default="checkpoint",
        metadata={"help": "laion_clap from a transformers CLAP folder: the mel it hears, 'checkpoint' (laion-clap's "
                  "in-model mel, what LAION-CLAP was trained on) or 'transformers' (the folder's ClapFeatureExtractor); "
                  "a release .pt always hears laion-clap's"},
    )
    teacher_layer: int = field(
        default=-1,
        metadata={"help": "checkpoint_encoder: the encoder block whose output is the target (0-based; -1: the last, "
                  "before the final LayerNorm); targets are normalised per patch"},
    )
    teacher_interpolation: str = field(
        default="bilinear",
        metadata={"help": f"sampling of the teacher's native map at the student's patch centres ({', '.join(INTERPOLATIONS)}); "
                  "time is aligned in seconds (LAION-CLAP's map spans 10 s, the student's 1024 frames 10.24 s)"},
    )
