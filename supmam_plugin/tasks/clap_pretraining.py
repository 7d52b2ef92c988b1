"""Task ``clap_pretraining``: clips and their captions ({split}.text) for training a CLAP (model
``clap``, criterion ``clap_contrastive``); the manifest keys are those of the other tasks."""

import logging
import os
from dataclasses import dataclass, field
from typing import Optional

from fairseq.tasks import register_task
from omegaconf import open_dict

from ..core.captions import TOKENIZER_FILE, CaptionTokenizer, read_captions
from ..core.checkpoints import CheckpointError
from ..core.keyword_captions import captions_from_labels
from ..core.manifest import ManifestError, read_class_list, read_labels, require_one_label_per_clip
from ..data.caption_dataset import CaptionDataset
from ..models.linked_settings import task_clip_length_wins
from .audio_clip_task import AudioClipTask, AudioClipTaskConfig

logger = logging.getLogger(__name__)

MIN_TEXT_TOKENS = 3  # BOS, one piece, EOS


@dataclass
class ClapPretrainingConfig(AudioClipTaskConfig):
    labels: Optional[str] = field(
        default=None, metadata={"help": "CLAP learns from captions; labels are not read (null)"})
    captions: str = field(
        default="text", metadata={"help": "extension of the caption files ({split}.{captions}: one line per clip, "
                                  "several captions of a clip joined by ' ||| ')"})
    caption_tokenizer: str = field(
        default="", metadata={"help": f"sentencepiece model of the captions ('' = DATA/{TOKENIZER_FILE}, made by "
                              "supmam-train-tokenizer DATA)"})
    max_text_tokens: int = field(
        default=64, metadata={"help": "pieces per caption, BOS and EOS included (longer captions are cut)"})
    label_captions: Optional[str] = field(
        default=None, metadata={"help": "training splits: also caption each labelled clip from its labels "
                                "({split}.{label_captions}, classes of dict.{label_captions}.txt; keyword-to-caption "
                                "as LAION-CLAP did for AudioSet, core/keyword_captions.py), mixed with its own captions; "
                                "clips with an empty label line keep only their captions; null: off"})
    label_caption_share: float = field(
        default=0.5, metadata={"help": "with task.label_captions: the share of a labelled clip's draws that take a "
                               "caption made from its labels (a new template and order each epoch)"})
    zero_shot_labels: Optional[str] = field(
        default=None, metadata={"help": "validation: also classify each clip zero-shot, by its similarity to a "
                                "prompt per class of dict.{zero_shot_labels}.txt, scored against {split}."
                                "{zero_shot_labels} (accuracy, or mAP with task.multi_label=true); null: off"})
    zero_shot_prompt: str = field(
        default="This is a sound of {}.", metadata={"help": "the prompt of a class, {} = its name with '_' as spaces "
                                                    "(LAION-CLAP's zero-shot prompt)"})


@register_task("clap_pretraining", dataclass=ClapPretrainingConfig)
class ClapPretrainingTask(AudioClipTask):
    cfg: ClapPretrainingConfig

    def __init__(self, cfg: ClapPretrainingConfig, classes):
        super().__init__(cfg, classes)
        if cfg.max_text_tokens < MIN_TEXT_TOKENS:
            raise ValueError(f"task.max_text_tokens={cfg.max_text_tokens} leaves no room for a caption between the "
                             f"begin and end tokens: use at least {MIN_TEXT_TOKENS} (default 64; LAION-CLAP: 77)")
        self.tokenizer = CaptionTokenizer(cfg.caption_tokenizer or os.path.join(cfg.data, TOKENIZER_FILE))
        logger.info(f"caption tokenizer {self.tokenizer.path}: {self.tokenizer.vocab_size} pieces")
        self.zero_shot_classes, self.zero_shot_tokens = None, None
        if cfg.zero_shot_labels:
            self.zero_shot_classes = read_class_list(os.path.join(cfg.data, f"dict.{cfg.zero_shot_labels}.txt"))
            prompts = [cfg.zero_shot_prompt.format(name.replace("_", " ")) for name in self.zero_shot_classes]
            self.zero_shot_tokens = CaptionDataset.pad_tokens([self.tokenizer.encode(p, cfg.max_text_tokens)
                                                               for p in prompts])  # (C, N)
            logger.info(f"zero-shot classification in validation: {len(prompts)} prompts, e.g. {prompts[0]!r}")

    def build_model(self, cfg, from_checkpoint=False):
        """A trained CLAP being loaded holds its whole audio tower: ``model.audio_init`` (which may
        have moved since) is not read again (fairseq's ``models.build_model`` does not tell the model).
        Its text tower learned one caption tokenizer's ids: a CLAP loaded with another is refused; a
        CLAP built records its tokenizer (``model.caption_tokenizer_sha256``, saved with it). A CLAP
        loaded is built for the task's ``target_frames``, as it always was (its ``build_model`` took it)."""
        if from_checkpoint:
            task_clip_length_wins(cfg, self)
        ours = self.tokenizer.sha256
        recorded = getattr(cfg, "caption_tokenizer_sha256", "")
        if from_checkpoint and recorded and recorded != ours:
            raise CheckpointError(
                f"this CLAP's text tower learned the caption tokenizer {cfg.caption_tokenizer_path} (SHA-256 "
                f"{recorded[:12]}...), but the task reads {self.tokenizer.path} (SHA-256 {ours[:12]}...): its captions "
                "would get other token ids; set task.caption_tokenizer to the tokenizer the CLAP was trained with")
        if from_checkpoint and not recorded:
            logger.warning("this CLAP was saved before CLAPs recorded their caption tokenizer: it cannot be checked "
                           f"that {self.tokenizer.path} is the one its text tower learned")
        with open_dict(cfg):
            if from_checkpoint and getattr(cfg, "audio_init", ""):
                cfg.audio_init = ""
            if not from_checkpoint or not recorded:
                cfg.caption_tokenizer_sha256, cfg.caption_tokenizer_path = ours, self.tokenizer.path
        return super().build_model(cfg, from_checkpoint)

    def load_dataset(self, split: str, combine: bool = False, epoch: int = 1, **kwargs):
        dataset = super().load_dataset(split, combine, epoch, **kwargs)
        caption_path = os.path.join(self.cfg.data, f"{split}.{self.cfg.captions}")
        keywords = None
        if self.cfg.label_captions and "train" in split:
            if not 0.0 < self.cfg.label_caption_share <= 1.0:
                raise ValueError(f"task.label_caption_share={self.cfg.label_caption_share}: give a share in (0, 1]")
            classes = read_class_list(os.path.join(self.cfg.data, f"dict.{self.cfg.label_captions}.txt"))
            label_path = os.path.join(self.cfg.data, f"{split}.{self.cfg.label_captions}")
            keywords = [[classes[c] for c in clip] for clip in read_labels(label_path, classes, dataset.manifest,
                                                                          allow_unlabeled=True)]
            logger.info(f"{split}: captions from the labels of {label_path} for "
                        f"{sum(map(bool, keywords))} of {len(keywords)} clips, {self.cfg.label_caption_share:.0%} of their draws")
        if keywords is not None and not os.path.isfile(caption_path):  # labels and no captions: AudioSet's case
            unlabelled = next((i for i, names in enumerate(keywords) if not names), None)
            if unlabelled is not None:
                raise ManifestError(f"{label_path}:{unlabelled + 1}: this clip has no label and the split no caption "
                                    f"file ({caption_path}): give every clip a label or write the captions")
            captions = captions_from_labels(keywords, self.cfg.seed)
            logger.info(f"{split}: no {os.path.basename(caption_path)}: every clip is captioned from its labels only")
        else:
            captions = read_captions(caption_path, dataset.manifest)
        labels = None
        if self.zero_shot_classes and "train" not in split:
            label_path = os.path.join(self.cfg.data, f"{split}.{self.cfg.zero_shot_labels}")
            labels = read_labels(label_path, self.zero_shot_classes, dataset.manifest)
            if not self.cfg.multi_label:
                require_one_label_per_clip(label_path, labels, " (zero-shot accuracy would count any of them as right)")
        self.datasets[split] = CaptionDataset(dataset, captions, self.tokenizer, self.cfg.max_text_tokens,
                                              draw_caption="train" in split, seed=self.cfg.seed,
                                              zero_shot_labels=labels, num_classes=len(self.zero_shot_classes or []),
                                              keywords=keywords, keyword_share=self.cfg.label_caption_share)
        return self.datasets[split]
