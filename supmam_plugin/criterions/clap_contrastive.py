"""Criterion ``clap_contrastive``: CLAP's symmetric InfoNCE (core.contrastive); in validation also
audio-text retrieval over the whole subset (R@1/5/10, mAP@10 both ways) and, with
``task.zero_shot_labels``, zero-shot classification from the class prompts (accuracy, or mAP over
the whole subset for multi-label)."""
from dataclasses import dataclass, field

import torch
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.dataclass import FairseqDataclass
from fairseq.logging import metrics

from ..core.contrastive import MAX_LOGIT_SCALE, contrastive_loss_sum
from ..core.retrieval import RANKS
from .prediction_meter import BatchPredictions, PredictionMeter
from .retrieval_meter import BatchEmbeddings, RetrievalMeter


@dataclass
class ClapContrastiveConfig(FairseqDataclass):
    report_retrieval: bool = field(
        default=True, metadata={"help": "validation: log retrieval scores over the whole subset (a2t_R1 ... "
                                "t2a_mAP10; a2t_R10 is also the 'retrieval' meter)"})


RETRIEVAL_KEYS = [f"{way}_{name}" for way in ("a2t", "t2a") for name in [*(f"R{k}" for k in RANKS), "mAP10"]]


@register_criterion("clap_contrastive", dataclass=ClapContrastiveConfig)
class ClapContrastiveCriterion(FairseqCriterion):
    """Loss summed over this worker's pairs, sample_size = pairs (the negatives come from every worker)."""

    def __init__(self, cfg: ClapContrastiveConfig, task):
        super().__init__(task)
        self.report_retrieval = cfg.report_retrieval
        self.prompt_embeddings = None  # (C, E) of the zero-shot prompts, embedded once per validation

    def train(self, mode: bool = True):
        # fairseq's trainer calls train() before each training step and eval() before each validation
        # batch: the weights change only in training, so the prompts are embedded again after it
        if mode:
            self.prompt_embeddings = None
        return super().train(mode)

    def forward(self, model, sample, reduce=True):
        out = model(**sample["net_input"])
        loss = contrastive_loss_sum(out["audio"], out["text"], out["logit_scale"])
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite CLAP loss on clip ids {sample['id'].tolist()}: lower optimization.lr")
        pairs = out["audio"].size(0)
        logging_output = {"loss": loss.detach(), "sample_size": pairs, "nsentences": pairs, "ntokens": pairs,
                          "logit_scale": float(out["logit_scale"].detach().clamp(0, MAX_LOGIT_SCALE).exp()) * pairs}
        if not model.training and self.report_retrieval:
            with torch.no_grad():
                text = model.embed_text(sample["caption_tokens"])
            logging_output["retrieval"] = BatchEmbeddings(out["audio"].detach().cpu().numpy(), sample["captions"],
                                                          text.cpu().numpy())
        if not model.training and "zero_shot_target" in sample:
            logging_output.update(self.zero_shot(model, out["audio"].detach(), sample["zero_shot_target"]))
        return loss, pairs, logging_output

    def zero_shot(self, model, audio, target) -> dict:
        """Each clip's class scores = cosine similarity to each class prompt. audio: (B, E); target: (B, C)."""
        if self.prompt_embeddings is None or self.prompt_embeddings.device != audio.device:
            with torch.no_grad():
                self.prompt_embeddings = model.embed_text(self.task.zero_shot_tokens.to(audio.device))  # (C, E)
        scores = audio @ self.prompt_embeddings.t()  # (B, C)
        if self.task.cfg.multi_label:
            return {"zero_shot": BatchPredictions(scores.cpu().numpy(), target.cpu().numpy().astype("uint8"))}
        hit = target.gather(1, scores.argmax(dim=1, keepdim=True))
        return {"zero_shot_correct": float(hit.sum()), "zero_shot_clips": len(target)}

    @staticmethod
    def reduce_metrics(logging_outputs) -> None:
        pairs = sum(log.get("sample_size", 0) for log in logging_outputs)
        metrics.log_scalar("loss", sum(float(log.get("loss", 0)) for log in logging_outputs) / max(pairs, 1), pairs,
                           round=4)
        metrics.log_scalar("inverse_temperature", sum(log.get("logit_scale", 0) for log in logging_outputs)
                           / max(pairs, 1), pairs, round=2)
        batches = [log["retrieval"] for log in logging_outputs if "retrieval" in log]
        for batch in batches:
            metrics.log_custom(RetrievalMeter, "retrieval", batch)
        clips = sum(log.get("zero_shot_clips", 0) for log in logging_outputs)
        if clips:
            metrics.log_scalar("zero_shot_accuracy", 100.0 * sum(log.get("zero_shot_correct", 0) for log in logging_outputs)
                               / clips, clips, round=3)
        for log in logging_outputs:
            if "zero_shot" in log:
                metrics.log_custom(PredictionMeter, "zero_shot_mAP", log["zero_shot"])
        if batches:
            for i, key in enumerate(RETRIEVAL_KEYS):
                metrics.log_derived(key, lambda meters, key=key: round(meters["retrieval"].scores()[key], 3),
                                    priority=60 + i)

    def logging_outputs_can_be_summed(self) -> bool:
        # training logs scalars only (fairseq sums them across workers with one all-reduce);
        # validation logs each batch's embeddings, gathered for whole-subset retrieval
        return self.training
